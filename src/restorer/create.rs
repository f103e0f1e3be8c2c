//! Stage 2 of a restore: create every planned item, parents first, as an
//! empty shell (directories 0700, files 0600 and empty); content and
//! metadata follow in later stages.
//!
//! An item whose directory could not be created is skipped silently: the
//! directory's failure was reported and covers everything below it.

use std::io;

use nix::sys::stat::SFlag;

use super::fsops::DirCache;
use super::plan::{ItemKind, Plan};
use super::Reporter;

/// Create the plan's items; returns, per item, whether it now exists.
pub(crate) fn create_items(
    plan: &Plan,
    cache: &mut DirCache,
    reporter: &mut Reporter,
) -> Vec<bool> {
    let mut created = vec![false; plan.items.len()];
    for (i, item) in plan.items.iter().enumerate() {
        if item.parent.is_some_and(|p| !created[p]) {
            continue;
        }
        match create_one(plan, cache, &created, i) {
            Ok(()) => created[i] = true,
            Err(e) => reporter.report(
                plan.location(i),
                format!("cannot create {}: {e}", describe(item.kind)),
            ),
        }
    }
    created
}

fn create_one(plan: &Plan, cache: &mut DirCache, created: &[bool], i: usize) -> io::Result<()> {
    let item = &plan.items[i];
    let name = item.name();
    let node = &item.node;
    match item.kind {
        ItemKind::Dir => cache.dir(plan, item.parent)?.make_dir(name),
        ItemKind::File { .. } => cache.dir(plan, item.parent)?.create_file(name).map(drop),
        ItemKind::Symlink => cache
            .dir(plan, item.parent)?
            .symlink(&node.link_target, name),
        ItemKind::Fifo => cache.dir(plan, item.parent)?.mkfifo(name),
        ItemKind::BlockDevice => {
            cache
                .dir(plan, item.parent)?
                .mknod(name, SFlag::S_IFBLK, node.device)
        }
        ItemKind::CharDevice => {
            cache
                .dir(plan, item.parent)?
                .mknod(name, SFlag::S_IFCHR, node.device)
        }
        ItemKind::HardLink { first } => {
            if !created[first] {
                return Err(io::Error::other(format!(
                    "the file it links to ({}) was not created",
                    plan.location(first)
                )));
            }
            let source = &plan.items[first];
            let src_dir = cache.open_separately(plan, source.parent)?;
            cache
                .dir(plan, item.parent)?
                .hard_link(&src_dir, source.name(), name)
        }
    }
}

/// The kind of an item, for messages.
pub(crate) fn describe(kind: ItemKind) -> &'static str {
    match kind {
        ItemKind::Dir => "directory",
        ItemKind::File { .. } => "file",
        ItemKind::HardLink { .. } => "hard link",
        ItemKind::Symlink => "symlink",
        ItemKind::Fifo => "fifo",
        ItemKind::BlockDevice => "block device",
        ItemKind::CharDevice => "character device",
    }
}
