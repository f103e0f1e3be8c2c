//! Snapshot trees: loading, walking and resolving paths; and choosing
//! snapshots (see [`select`]).
//!
//! Trees come from an untrusted repository: node names are checked with
//! [`check_name`] before they are used as path components, and walks are
//! bounded in depth so a cyclic or absurdly deep tree cannot exhaust the
//! stack.

pub mod select;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::format::tree::{Node, NodeType, Tree};
use crate::id::TreeId;
use crate::repository::Repository;

/// Deeper trees than this are treated as corrupt (restic's own limit on
/// path depth in practice is far lower than what filesystems allow).
pub const MAX_DEPTH: usize = 4096;

/// Why a node name cannot be used as a path component, if it cannot.
pub fn check_name(name: &OsStr) -> std::result::Result<(), &'static str> {
    let name = name.as_bytes();
    if name.is_empty() {
        Err("empty name")
    } else if name == b"." || name == b".." {
        Err("name is . or ..")
    } else if name.contains(&b'/') {
        Err("name contains '/'")
    } else if name.contains(&0) {
        Err("name contains NUL")
    } else {
        Ok(())
    }
}

/// Find the node at `path` (components separated by `/`) below `root`.
/// Returns `None` for the root itself ("" or "/").
pub fn resolve_path(repo: &Repository, root: &TreeId, path: &str) -> Result<Option<Node>> {
    let mut tree = repo.load_tree(root)?;
    let mut found: Option<Node> = None;
    for comp in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
        if let Some(node) = &found {
            let subtree = node.subtree.ok_or_else(|| {
                Error::NotFound(format!(
                    "{path}: {} is not a directory",
                    node.name.to_string_lossy()
                ))
            })?;
            tree = repo.load_tree(&subtree)?;
        }
        let node = tree
            .nodes
            .iter()
            .find(|n| n.name.as_os_str() == OsStr::new(comp))
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("path {path} in snapshot")))?;
        found = Some(node);
    }
    Ok(found)
}

/// One entry of a depth-first walk: the node's path relative to the walk's
/// root, and the node.
pub struct WalkEntry {
    pub path: PathBuf,
    pub node: Node,
}

/// Visit every node below `root` depth first, parents before children, in
/// tree order. Nodes with unusable names are reported to `skip` and not
/// descended into. The visitor returns `false` to skip a directory's
/// children.
pub fn walk(
    repo: &Repository,
    root: &TreeId,
    visit: &mut dyn FnMut(&WalkEntry) -> Result<bool>,
    skip: &mut dyn FnMut(&Path, &OsStr, &'static str),
) -> Result<()> {
    walk_inner(repo, root, Path::new(""), 0, visit, skip)
}

fn walk_inner(
    repo: &Repository,
    id: &TreeId,
    prefix: &Path,
    depth: usize,
    visit: &mut dyn FnMut(&WalkEntry) -> Result<bool>,
    skip: &mut dyn FnMut(&Path, &OsStr, &'static str),
) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(Error::corrupt(
            format!("tree {id}"),
            format!("nested deeper than {MAX_DEPTH} levels"),
        ));
    }
    let tree: Tree = repo.load_tree(id)?;
    for node in tree.nodes {
        if let Err(why) = check_name(&node.name) {
            skip(prefix, &node.name, why);
            continue;
        }
        let entry = WalkEntry {
            path: prefix.join(&node.name),
            node,
        };
        let descend = visit(&entry)?;
        if descend && entry.node.node_type == NodeType::Dir {
            if let Some(sub) = entry.node.subtree {
                walk_inner(repo, &sub, &entry.path, depth + 1, visit, skip)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_name;
    use std::ffi::OsStr;

    #[test]
    fn hostile_names_are_rejected() {
        for bad in ["", ".", "..", "a/b", "/", "x\0y"] {
            assert!(check_name(OsStr::new(bad)).is_err(), "{bad:?}");
        }
        for good in ["a", "...", ".hidden", "with space", "ünïcode", "a\nb"] {
            assert!(check_name(OsStr::new(good)).is_ok(), "{good:?}");
        }
    }
}
