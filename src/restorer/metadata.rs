//! Stage 4 of a restore: ownership, extended attributes, mode and times.
//!
//! Items are handled in reverse plan order, so every directory comes after
//! everything inside it: its mode (which may forbid writing) and its times
//! (which creating entries would change) are set last. Per item: owner
//! first (`chown` clears setuid/setgid), then extended attributes (before a
//! read-only mode could forbid them), then mode (not for symlinks), then
//! access and modification times (after everything that could change them).
//!
//! As `cp -a` and restic do, a refused `chown` is only a problem when
//! running as root. Hard links share their file's inode and are skipped;
//! items that are not done (a file with missing content) keep the mode and
//! times they were created with, which marks them as not restored.

use std::ffi::OsStr;

use crate::format::tree::Node;

use super::fsops::{DirCache, DirHandle};
use super::plan::{ItemKind, Plan};
use super::Reporter;

/// Restore the metadata of every done item; an item whose metadata fails
/// is no longer done.
pub(crate) fn restore_metadata(
    plan: &Plan,
    cache: &mut DirCache,
    done: &mut [bool],
    reporter: &mut Reporter,
) {
    let as_root = nix::unistd::geteuid().is_root();
    for i in (0..plan.items.len()).rev() {
        let item = &plan.items[i];
        if !done[i] || matches!(item.kind, ItemKind::HardLink { .. }) {
            continue;
        }
        let failures = match cache.dir(plan, item.parent) {
            Ok(dir) => apply(dir, item.name(), &item.node, item.kind, as_root),
            Err(e) => vec![format!("cannot open its directory: {e}")],
        };
        if !failures.is_empty() {
            done[i] = false;
            reporter.report(
                plan.location(i),
                format!("restoring metadata: {}", failures.join("; ")),
            );
        }
    }
}

/// Apply a node's metadata to the entry `name`; returns what failed.
fn apply(dir: &DirHandle, name: &OsStr, node: &Node, kind: ItemKind, as_root: bool) -> Vec<String> {
    let mut failures = Vec::new();
    if let Err(e) = dir.chown(name, node.uid, node.gid) {
        let refused = matches!(e.raw_os_error(), Some(libc::EPERM | libc::EACCES));
        if as_root || !refused {
            failures.push(format!("lchown to {}:{}: {e}", node.uid, node.gid));
        }
    }
    for attr in &node.extended_attributes {
        if let Err(e) = dir.set_xattr(name, &attr.name, &attr.value) {
            failures.push(format!("setting extended attribute {:?}: {e}", attr.name));
        }
    }
    if kind != ItemKind::Symlink {
        if let Err(e) = dir.chmod(name, node.unix_mode()) {
            failures.push(format!("chmod {:o}: {e}", node.unix_mode() & 0o7777));
        }
    }
    if let Err(e) = dir.set_times(name, node.atime.unix(), node.mtime.unix()) {
        failures.push(format!("setting times: {e}"));
    }
    failures
}
