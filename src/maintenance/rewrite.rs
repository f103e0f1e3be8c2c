//! Rewriting snapshot trees: the engine behind `rewrite --exclude` and
//! `repair snapshots`.
//!
//! [`TreeRewriter`] walks a tree depth first and lets a callback keep,
//! change or drop each node (by its path in the snapshot, `/a/b`); a
//! subtree that cannot be loaded is handed to a second callback, which may
//! replace it (with an empty tree) or fail. Trees whose nodes did not change
//! keep their id and are not written again; changed trees are saved as new
//! blobs (call [`Repository::flush`] before saving a snapshot that uses
//! them). Results are memoized by tree id when the node callback does not
//! depend on the path ([`TreeRewriter::path_independent`]).
//!
//! [`save_rewritten`] stores a snapshot with a new root the way restic does:
//! `original` points at the first snapshot of the chain, and with `forget`
//! the old snapshot file is removed after the new one is stored.

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;

use crate::backend::FileType;
use crate::error::{Error, Result};
use crate::format::snapshot::Snapshot;
use crate::format::tree::{Node, NodeType, Tree};
use crate::id::{SnapshotId, TreeId};
use crate::repository::Repository;

/// What to do with a node.
pub type NodeFn<'a> = dyn FnMut(Node, &str) -> Option<Node> + 'a;
/// What to put in place of a subtree that cannot be loaded (`path`, error).
pub type FailedTreeFn<'a> = dyn FnMut(&TreeId, &str, Error) -> Result<Option<TreeId>> + 'a;

/// Rewrites trees; see the module docs.
pub struct TreeRewriter<'a> {
    repo: &'a Repository,
    node: Box<NodeFn<'a>>,
    failed: Box<FailedTreeFn<'a>>,
    memo: Option<HashMap<TreeId, TreeId>>,
}

impl<'a> TreeRewriter<'a> {
    /// A rewriter applying `node` to every node; a subtree that fails to
    /// load is passed to `failed`, whose `Ok(None)` drops the directory.
    pub fn new(repo: &'a Repository, node: Box<NodeFn<'a>>, failed: Box<FailedTreeFn<'a>>) -> Self {
        TreeRewriter {
            repo,
            node,
            failed,
            memo: None,
        }
    }

    /// Declare that the node callback ignores paths, so that a subtree shared
    /// by many snapshots is rewritten once.
    pub fn path_independent(mut self) -> Self {
        self.memo = Some(HashMap::new());
        self
    }

    /// Rewrite the tree `id` found at `path` (`/` for a root). Returns the
    /// id of the result, equal to `id` if nothing changed.
    pub fn rewrite(&mut self, id: &TreeId, path: &str) -> Result<TreeId> {
        self.rewrite_at(id, path, 0)
    }

    fn rewrite_at(&mut self, id: &TreeId, path: &str, depth: usize) -> Result<TreeId> {
        if depth > crate::tree::MAX_DEPTH {
            return Err(Error::corrupt(format!("tree {id}"), "nested too deeply"));
        }
        if let Some(done) = self.memo.as_ref().and_then(|m| m.get(id)) {
            return Ok(*done);
        }
        let tree = self.repo.load_tree(id)?;
        let mut out = Tree::new();
        let mut changed = false;
        for node in tree.nodes {
            let child = join(path, &node.name);
            let before = node.clone();
            let Some(mut node) = (self.node)(node, &child) else {
                changed = true;
                continue;
            };
            if node.node_type == NodeType::Dir {
                if let Some(sub) = node.subtree {
                    match self.rewrite_at(&sub, &child, depth + 1) {
                        Ok(new) => node.subtree = Some(new),
                        Err(e) => match (self.failed)(&sub, &child, e)? {
                            Some(new) => node.subtree = Some(new),
                            None => {
                                changed = true;
                                continue;
                            }
                        },
                    }
                }
            }
            changed |= node != before;
            out.nodes.push(node);
        }
        let new = if changed {
            self.repo.save_tree(&out)?
        } else {
            *id
        };
        if let Some(memo) = self.memo.as_mut() {
            memo.insert(*id, new);
        }
        Ok(new)
    }
}

/// `path/name` with a single separator.
fn join(path: &str, name: &std::ffi::OsStr) -> String {
    let name = String::from_utf8_lossy(name.as_bytes());
    if path.ends_with('/') {
        format!("{path}{name}")
    } else {
        format!("{path}/{name}")
    }
}

/// Store `sn` with root `tree` as a new snapshot derived from `old`, and
/// remove `old` if `forget`. Flushes pending blobs first, so the new trees
/// are indexed before the snapshot that needs them exists.
pub fn save_rewritten(
    repo: &Repository,
    old: &SnapshotId,
    mut sn: Snapshot,
    tree: TreeId,
    forget: bool,
) -> Result<SnapshotId> {
    repo.flush()?;
    sn.tree = tree;
    if sn.original.is_none() {
        sn.original = Some(*old);
    }
    let id = repo.save_snapshot(&sn)?;
    if forget {
        repo.backend().remove(FileType::Snapshot, &old.to_hex())?;
    }
    Ok(id)
}

#[cfg(test)]
mod tests {

    use super::*;

    use crate::blob::BlobType;

    use crate::format::GoTime;

    fn repo() -> Repository {
        crate::testutil::mem_repo(2).1
    }

    /// `/a` (file), `/d/b` (file), `/d/e/c` (file).
    fn sample(repo: &Repository) -> TreeId {
        let file = |name: &str| {
            let (id, _) = repo.save_blob(BlobType::Data, name.as_bytes()).unwrap();
            let mut n = Node::new(name, NodeType::File);
            n.content = Some(vec![id]);
            n
        };
        let dir = |name: &str, tree: Tree| {
            let mut n = Node::new(name, NodeType::Dir);
            n.subtree = Some(repo.save_tree(&tree).unwrap());
            n
        };
        let e = Tree {
            nodes: vec![file("c")],
        };
        let d = Tree {
            nodes: vec![file("b"), dir("e", e)],
        };
        let root = Tree {
            nodes: vec![file("a"), dir("d", d)],
        };
        let id = repo.save_tree(&root).unwrap();
        repo.flush().unwrap();
        id
    }

    fn paths(repo: &Repository, root: &TreeId) -> Vec<String> {
        let mut out = Vec::new();
        crate::tree::walk(
            repo,
            root,
            &mut |e| {
                out.push(e.path.display().to_string());
                Ok(true)
            },
            &mut |_, _, _| {},
        )
        .unwrap();
        out
    }

    #[test]
    fn excluding_by_path_and_keeping_unchanged_trees() {
        let repo = repo();
        let root = sample(&repo);
        repo.load_index().unwrap();
        let mut same =
            TreeRewriter::new(&repo, Box::new(|n, _| Some(n)), Box::new(|_, _, e| Err(e)));
        assert_eq!(
            same.rewrite(&root, "/").unwrap(),
            root,
            "no change, same id"
        );

        let mut seen = Vec::new();
        let mut rw = TreeRewriter::new(
            &repo,
            Box::new(|n, p| {
                seen.push(p.to_string());
                (p != "/d/e").then_some(n)
            }),
            Box::new(|_, _, e| Err(e)),
        );
        let new = rw.rewrite(&root, "/").unwrap();
        drop(rw);
        repo.flush().unwrap();
        assert_ne!(new, root);
        assert_eq!(seen, ["/a", "/d", "/d/b", "/d/e"]);
        assert_eq!(paths(&repo, &new), ["a", "d", "d/b"]);
    }

    #[test]
    fn unloadable_subtrees_are_replaced_or_fail() {
        let repo = repo();
        let mut root = Tree::new();
        let mut d = Node::new("d", NodeType::Dir);
        d.subtree = Some(TreeId(crate::id::Id::hash(b"missing")));
        root.insert(d).unwrap();
        let root = repo.save_tree(&root).unwrap();
        repo.flush().unwrap();
        repo.load_index().unwrap();
        let mut failing =
            TreeRewriter::new(&repo, Box::new(|n, _| Some(n)), Box::new(|_, _, e| Err(e)));
        assert!(failing.rewrite(&root, "/").is_err());
        let empty = repo.save_tree(&Tree::new()).unwrap();
        let mut replaced = Vec::new();
        let mut fixing = TreeRewriter::new(
            &repo,
            Box::new(|n, _| Some(n)),
            Box::new(|_, p, _| {
                replaced.push(p.to_string());
                Ok(Some(empty))
            }),
        )
        .path_independent();
        let new = fixing.rewrite(&root, "/").unwrap();
        drop(fixing);
        assert_eq!(replaced, ["/d"]);
        let sn = Snapshot::new(GoTime::zero(), root, vec!["/".into()]);
        let old = repo.save_snapshot(&sn).unwrap();
        let id = save_rewritten(&repo, &old, sn, new, true).unwrap();
        let loaded = repo.load_snapshot(&id).unwrap();
        assert_eq!((loaded.tree, loaded.original), (new, Some(old)));
        assert!(repo.load_snapshot(&old).is_err(), "forgotten");
        assert_eq!(paths(&repo, &new), ["d"]);
    }
}
