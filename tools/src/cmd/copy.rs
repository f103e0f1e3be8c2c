//! `cairn copy`: copy snapshots from another repository (`--from-repo`)
//! into this one, as restic's `copy`. The source may have another password
//! and other chunker parameters; blobs the destination has are skipped, and
//! so are snapshots already copied (see [`cairn_core::maintenance::copy`]).

use std::collections::HashSet;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use cairn_core::backend::FileType;
use cairn_core::id::SnapshotId;
use cairn_core::maintenance::copy::{copy_snapshot, CopiesIndex, CopyStats};
use cairn_core::repository::{LockKind, OpenOptions, Repository};

use crate::cmd::snapshots::FilterArgs;
use crate::context::{backend_for, env, read_trimmed, resolve_password, Context};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Source repository to copy snapshots from (env: RESTIC_FROM_REPOSITORY)
    #[arg(long = "from-repo", value_name = "repository")]
    from_repo: Option<String>,
    /// File from which to read the source repository location (env: RESTIC_FROM_REPOSITORY_FILE)
    #[arg(long = "from-repository-file", value_name = "file")]
    from_repository_file: Option<PathBuf>,
    /// File to read the source repository password from (env: RESTIC_FROM_PASSWORD_FILE)
    #[arg(long = "from-password-file", value_name = "file")]
    from_password_file: Option<PathBuf>,
    /// Shell command to obtain the source repository password from (env: RESTIC_FROM_PASSWORD_COMMAND)
    #[arg(long = "from-password-command", value_name = "command")]
    from_password_command: Option<String>,
    /// Key ID of key to try decrypting the source repository first (env: RESTIC_FROM_KEY_HINT)
    #[arg(long = "from-key-hint", value_name = "key")]
    from_key_hint: Option<String>,
    #[command(flatten)]
    filter: FilterArgs,
    /// Snapshot IDs to copy (default: all matching the filters)
    #[arg(value_name = "snapshot ID")]
    ids: Vec<String>,
}

impl Args {
    fn source(&self) -> Result<String> {
        if let Some(r) = &self.from_repo {
            return Ok(r.clone());
        }
        let file = self
            .from_repository_file
            .clone()
            .or_else(|| env("FROM_REPOSITORY_FILE").map(PathBuf::from));
        if let Some(f) = file {
            return read_trimmed(&f, "repository file");
        }
        env("FROM_REPOSITORY").context(
            "Please specify a source repository location (--from-repo or --from-repository-file)",
        )
    }

    fn password(&self) -> Result<String> {
        let command = self
            .from_password_command
            .clone()
            .or_else(|| env("FROM_PASSWORD_COMMAND"));
        let file = self
            .from_password_file
            .clone()
            .or_else(|| env("FROM_PASSWORD_FILE").map(PathBuf::from));
        resolve_password(command, file, env("FROM_PASSWORD"))?.context(
            "no password for the source repository: set RESTIC_FROM_PASSWORD, --from-password-file or --from-password-command",
        )
    }
}

pub fn run(ctx: &Context, args: Args) -> Result<()> {
    let verbose = !ctx.global.quiet;
    let location = args.source()?;
    let src_opts = OpenOptions {
        key_hint: args.from_key_hint.clone().or_else(|| env("FROM_KEY_HINT")),
        ..OpenOptions::default()
    };
    let src = Repository::open(
        backend_for(&location)?,
        args.password()?.as_bytes(),
        &src_opts,
    )
    .with_context(|| format!("opening source repository {location}"))?;
    let dst = ctx.open()?;
    let _src_lock = if ctx.global.no_lock {
        None
    } else {
        Some(src.lock(LockKind::Shared)?)
    };
    let _dst_lock = dst.lock(LockKind::Shared)?;
    src.load_index()?;
    dst.load_index()?;

    let filter = args.filter.filter();
    let dst_snapshots = cairn_core::tree::select::filter_snapshots(&dst, &filter)?;
    let copies = CopiesIndex::new(&dst_snapshots);
    let sources = if args.ids.is_empty() {
        cairn_core::tree::select::filter_snapshots(&src, &filter)?
    } else {
        let mut out = Vec::new();
        for spec in &args.ids {
            let (id, sn, _) = cairn_core::tree::select::find_snapshot(&src, spec, &filter)?;
            out.push((id, sn));
        }
        out
    };
    let threads = crate::cmd::prune::io_threads();
    let mut visited = HashSet::new();
    let mut stats = CopyStats::default();
    for (id, sn) in sources {
        if verbose {
            println!(
                "\nsnapshot {} of {:?} at {})",
                id.short(),
                sn.paths,
                sn.time
            );
        }
        if let Some(existing) = copies.copy_of(&id, &sn) {
            if verbose {
                println!(
                    "skipping source snapshot {}, was already copied to snapshot {}",
                    id.short(),
                    existing.short()
                );
            }
            continue;
        }
        if verbose {
            println!("  copy started, this may take a while...");
        }
        let new: SnapshotId =
            copy_snapshot(&src, &dst, &id, &sn, &mut visited, threads, &mut stats)?;
        if verbose {
            println!("snapshot {} saved", new.short());
        }
    }
    debug_assert!(dst.list_ids(FileType::Snapshot).is_ok());
    if ctx.global.verbose >= 1 {
        println!(
            "copied {} trees and {} data blobs ({} bytes)",
            stats.trees, stats.data_blobs, stats.bytes
        );
    }
    Ok(())
}
