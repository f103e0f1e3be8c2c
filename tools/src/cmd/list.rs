//! `cairn list`: the ids of one kind of repository object.

use anyhow::{bail, Result};
use cairn_core::backend::FileType;

use crate::context::Context;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// One of: blobs, packs, index, snapshots, keys, locks
    #[arg(value_name = "TYPE")]
    tpe: String,
}

pub fn run(ctx: &Context, args: Args) -> Result<()> {
    let tpe = match args.tpe.as_str() {
        "blobs" => {
            let opened = ctx.open_indexed()?;
            let mut out = std::io::stdout().lock();
            for (handle, _) in opened.repo.index().iter() {
                use std::io::Write;
                writeln!(out, "{} {}", handle.tpe, handle.id)?;
            }
            return Ok(());
        }
        "packs" => FileType::Pack,
        "index" => FileType::Index,
        "snapshots" => FileType::Snapshot,
        "keys" => FileType::Key,
        "locks" => FileType::Lock,
        other => {
            bail!("no such type: {other} (want blobs, packs, index, snapshots, keys or locks)")
        }
    };
    // Like restic, listing locks takes no lock of its own.
    let repo = if tpe == FileType::Lock {
        ctx.open()?
    } else {
        ctx.open_locked(cairn_core::repository::LockKind::Shared)?
            .repo
    };
    let mut out = std::io::stdout().lock();
    for id in repo.list_ids(tpe)? {
        use std::io::Write;
        writeln!(out, "{id}")?;
    }
    Ok(())
}
