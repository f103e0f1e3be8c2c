//! The structure check: every snapshot loads, every tree reachable from a
//! snapshot loads and decodes, and every blob a tree refers to is in the
//! index.
//!
//! Trees are walked breadth first, one level per round, each level loaded
//! by the worker pool. A tree is loaded and checked once however many
//! snapshots or directories share it (a set of visited tree ids), so the
//! cost is that of the distinct trees, not of the file system views. Trees
//! are loaded through the checker's own index (built from the index files
//! it just verified), trying every copy of a blob before giving up, as
//! restic does.
//!
//! Node checks follow restic 0.14's `checkTree`: a file must have a content
//! list whose ids are non-null and indexed as data blobs; a directory must
//! have a non-null subtree; the type must be one restic knows; the name must
//! not be empty. Blob sizes are deliberately not compared with file sizes
//! (restic #1887: legitimately differing cases exist).

use std::collections::HashSet;

use crate::blob::{BlobHandle, BlobType};
use crate::error::{Error, Result};
use crate::format::tree::{NodeType, Tree};
use crate::id::{BlobId, Id, SnapshotId, TreeId};
use crate::index::MasterIndex;
use crate::repository::Repository;

use super::finding::{Finding, TreeProblem};
use super::Recorder;
use crate::maintenance::parallel;

/// What the structure check saw.
pub(super) struct Structure {
    /// Snapshot files listed.
    pub snapshots: usize,
    /// Every tree id reached from a snapshot (loadable or not).
    pub trees: HashSet<TreeId>,
    /// Data blobs referenced by some file, if unused blobs are tracked.
    pub data: Option<HashSet<BlobId>>,
}

/// Load all snapshots and walk their trees, recording every problem.
pub(super) fn check(
    repo: &Repository,
    index: &MasterIndex,
    threads: usize,
    track_data: bool,
    rec: &mut Recorder<'_>,
) -> Result<Structure> {
    let snapshot_ids: Vec<SnapshotId> = repo
        .list_ids(crate::backend::FileType::Snapshot)?
        .into_iter()
        .map(SnapshotId)
        .collect();
    let snapshots = snapshot_ids.len();

    let mut roots = Vec::new();
    parallel::map(
        threads,
        snapshot_ids,
        |id| (id, repo.load_snapshot(&id)),
        |(snapshot, loaded)| match loaded {
            Ok(sn) => roots.push(sn.tree),
            Err(error) => rec.add(Finding::SnapshotUnreadable { snapshot, error }),
        },
    );

    let mut structure = Structure {
        snapshots,
        trees: HashSet::new(),
        data: track_data.then(HashSet::new),
    };
    let mut level: Vec<TreeId> = roots
        .into_iter()
        .filter(|id| structure.trees.insert(*id))
        .collect();
    while !level.is_empty() {
        let mut next = Vec::new();
        parallel::map(
            threads,
            level,
            |id| {
                (
                    id,
                    load_tree(repo, index, &id).map(|t| check_tree(&t, index, track_data)),
                )
            },
            |(tree, checked)| match checked {
                Err(error) => rec.add(Finding::TreeUnreadable { tree, error }),
                Ok(checked) => {
                    for problem in checked.problems {
                        rec.add(Finding::Tree { tree, problem });
                    }
                    next.extend(
                        checked
                            .subtrees
                            .into_iter()
                            .filter(|id| structure.trees.insert(*id)),
                    );
                    if let Some(data) = structure.data.as_mut() {
                        data.extend(checked.data);
                    }
                }
            },
        );
        level = next;
    }
    Ok(structure)
}

/// Load and decode a tree from any of its indexed copies.
fn load_tree(repo: &Repository, index: &MasterIndex, id: &TreeId) -> Result<Tree> {
    let handle = BlobHandle::new(BlobType::Tree, BlobId::from(*id));
    let mut first_error = None;
    for entry in index.get_all(&handle) {
        match repo.load_blob_from(&handle, &entry) {
            Ok(data) => {
                return Tree::from_json(&data).map_err(|e| match e {
                    Error::Corrupt { reason, .. } => Error::corrupt(format!("tree {id}"), reason),
                    other => other,
                })
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or_else(|| Error::BlobNotInIndex(format!("tree {id}"))))
}

/// The result of checking one decoded tree.
struct CheckedTree {
    problems: Vec<TreeProblem>,
    /// Non-null subtree ids, in node order.
    subtrees: Vec<TreeId>,
    /// Non-null data blob ids (only if tracked).
    data: Vec<BlobId>,
}

/// restic's node checks (see the module docs).
fn check_tree(tree: &Tree, index: &MasterIndex, track_data: bool) -> CheckedTree {
    let null = Id::default();
    let mut out = CheckedTree {
        problems: Vec::new(),
        subtrees: Vec::new(),
        data: Vec::new(),
    };
    for node in &tree.nodes {
        let name = || node.name.to_string_lossy().into_owned();
        match &node.node_type {
            NodeType::File => match &node.content {
                None => out
                    .problems
                    .push(TreeProblem::FileWithoutContent { name: name() }),
                Some(blobs) => {
                    for (i, blob) in blobs.iter().enumerate() {
                        if blob.0 == null {
                            out.problems.push(TreeProblem::NullBlob {
                                name: name(),
                                index: i,
                            });
                            continue;
                        }
                        if !index.has(&BlobHandle::new(BlobType::Data, *blob)) {
                            out.problems.push(TreeProblem::BlobNotInIndex {
                                name: name(),
                                blob: *blob,
                            });
                        }
                        if track_data {
                            out.data.push(*blob);
                        }
                    }
                }
            },
            NodeType::Dir => match node.subtree {
                None => out
                    .problems
                    .push(TreeProblem::DirWithoutSubtree { name: name() }),
                Some(subtree) if subtree.0 == null => {
                    out.problems.push(TreeProblem::NullSubtree { name: name() })
                }
                Some(subtree) => out.subtrees.push(subtree),
            },
            NodeType::Symlink
            | NodeType::Socket
            | NodeType::CharDev
            | NodeType::Dev
            | NodeType::Fifo
            | NodeType::Irregular => {}
            NodeType::Other(t) => out.problems.push(TreeProblem::InvalidType {
                name: name(),
                node_type: t.clone(),
            }),
        }
        if node.name.is_empty() {
            out.problems.push(TreeProblem::EmptyName);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::tree::Node;
    use crate::id::PackId;
    use crate::pack::PackBlob;

    fn blob(n: u8) -> BlobId {
        BlobId(Id::hash(&[n]))
    }

    #[test]
    fn node_rules() {
        let mut index = MasterIndex::new();
        index.insert_pack(
            PackId(Id::hash(b"pack")),
            &[PackBlob {
                tpe: BlobType::Data,
                id: blob(1),
                offset: 0,
                length: 40,
                uncompressed_length: None,
            }],
        );
        let mut file_ok = Node::new("ok", NodeType::File);
        file_ok.content = Some(vec![blob(1)]);
        let mut file_bad = Node::new("bad", NodeType::File);
        file_bad.content = Some(vec![BlobId::default(), blob(2), blob(1)]);
        let mut file_nil = Node::new("nil", NodeType::File);
        file_nil.content = None;
        let mut dir = Node::new("dir", NodeType::Dir);
        dir.subtree = Some(TreeId(Id::hash(b"sub")));
        let mut dir_null = Node::new("dnull", NodeType::Dir);
        dir_null.subtree = Some(TreeId::default());
        let tree = Tree {
            nodes: vec![
                file_ok,
                file_bad,
                file_nil,
                dir,
                dir_null,
                Node::new("dnone", NodeType::Dir),
                Node::new("weird", NodeType::Other("whiteout".into())),
                Node::new("", NodeType::Symlink),
            ],
        };
        let checked = check_tree(&tree, &index, true);
        assert_eq!(
            checked.problems,
            [
                TreeProblem::NullBlob {
                    name: "bad".into(),
                    index: 0
                },
                TreeProblem::BlobNotInIndex {
                    name: "bad".into(),
                    blob: blob(2)
                },
                TreeProblem::FileWithoutContent { name: "nil".into() },
                TreeProblem::NullSubtree {
                    name: "dnull".into()
                },
                TreeProblem::DirWithoutSubtree {
                    name: "dnone".into()
                },
                TreeProblem::InvalidType {
                    name: "weird".into(),
                    node_type: "whiteout".into()
                },
                TreeProblem::EmptyName,
            ]
        );
        assert_eq!(checked.subtrees, [TreeId(Id::hash(b"sub"))]);
        assert_eq!(checked.data, [blob(1), blob(2), blob(1)]);
        assert!(check_tree(&tree, &index, false).data.is_empty());
    }
}
