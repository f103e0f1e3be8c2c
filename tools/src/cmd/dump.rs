//! `cairn dump`: print one file of a snapshot to stdout, or a directory
//! (or the whole snapshot, `/`) as a tar or zip archive, as restic does.
//! `--target FILE` writes to a file instead. Output is streamed, so it can
//! go into a pipe; an archive is refused on a terminal.
//!
//! Entries the repository makes unusable (bad names, duplicates, bad blobs)
//! are reported on stderr and the dump goes on; the command then exits
//! with status 3. Bad blobs are never written as data (see
//! `cairn_core::dump`).

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{bail, Context as _, Result};
use cairn_core::dump::{self, Format};
use cairn_core::format::tree::NodeType;
use cairn_core::restorer::Problem;
use cairn_core::tree::select::find_snapshot;

use crate::cmd::snapshots::FilterArgs;
use crate::context::Context;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Set archive format as "tar" or "zip"
    #[arg(
        short = 'a',
        long = "archive",
        value_name = "FORMAT",
        default_value = "tar"
    )]
    archive: String,
    /// Write the output to target path
    #[arg(short = 't', long = "target", value_name = "PATH")]
    target: Option<PathBuf>,
    #[command(flatten)]
    filter: FilterArgs,
    /// Snapshot: an ID, a unique ID prefix, or "latest" (ID:subfolder
    /// makes paths relative to that folder)
    #[arg(value_name = "SNAPSHOT")]
    snapshot: String,
    /// The file or directory to dump ("/" for everything)
    #[arg(value_name = "FILE")]
    file: String,
}

/// Output buffer size: archives are written in large pieces.
const BUFFER: usize = 1 << 20;

pub fn run(ctx: &Context, args: Args) -> Result<()> {
    let format: Format = args.archive.parse()?;
    let opened = ctx.open_indexed()?;
    let repo = &opened.repo;
    let (id, sn, sub) = find_snapshot(repo, &args.snapshot, &args.filter.filter())
        .context("failed to find snapshot")?;
    let root = match sub.as_deref() {
        None => sn.tree,
        Some(path) => crate::cmd::restore::subfolder_tree(repo, &id, &sn.tree, path)?,
    };
    let components: Vec<&str> = args
        .file
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if components.contains(&"..") {
        bail!("cannot dump file: path {:?} contains \"..\"", args.file);
    }
    let path = format!("/{}", components.join("/"));

    let mut out: Box<dyn Write> = match &args.target {
        Some(target) => Box::new(
            File::create(target)
                .with_context(|| format!("cannot dump to file {}", target.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let archive_allowed = || -> Result<()> {
        if args.target.is_none() && std::io::stdout().is_terminal() {
            bail!("stdout is the terminal, please redirect output");
        }
        Ok(())
    };

    let mut problems = 0u64;
    let mut report = |p: Problem| {
        problems += 1;
        eprintln!("ignoring error for {}: {}", p.location, p.message);
    };
    if components.is_empty() {
        archive_allowed()?;
        let writer = BufWriter::with_capacity(BUFFER, out);
        dump::dump_tree(repo, &root, "/", format, writer, &mut report)
            .context("cannot dump file")?;
    } else {
        let node = cairn_core::tree::resolve_path(repo, &root, &path)
            .ok()
            .flatten()
            .with_context(|| format!("cannot dump file: path {path:?} not found in snapshot"))?;
        match node.node_type {
            NodeType::File => {
                let mut writer = BufWriter::with_capacity(BUFFER, &mut out);
                dump::dump_file(repo, &node, &mut writer).context("cannot dump file")?;
                writer.flush()?;
            }
            NodeType::Dir => {
                archive_allowed()?;
                let subtree = node
                    .subtree
                    .with_context(|| format!("cannot dump file: {path:?} has no subtree"))?;
                let writer = BufWriter::with_capacity(BUFFER, out);
                dump::dump_tree(repo, &subtree, &path, format, writer, &mut report)
                    .context("cannot dump file")?;
            }
            other => bail!(
                "cannot dump file: {path:?} should be a file, but is a {:?}",
                other.as_str()
            ),
        }
    }
    if problems > 0 {
        eprintln!("There were {problems} errors");
        return Err(crate::ExitStatus(crate::EXIT_INCOMPLETE).into());
    }
    Ok(())
}
