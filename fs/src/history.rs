//! The history view: `history/<path>/<time>` for every distinct version of a
//! file across all snapshots the mount shows.
//!
//! `history/` mirrors the union of all snapshot trees: a name that is a
//! directory in any snapshot is a directory here, merging that directory
//! from every snapshot that has it ([`HistSources`]). A name that is never a
//! directory (a file, symlink, device, …) becomes a *version directory*
//! holding one entry per version, named by the time (time template) of the
//! first snapshot that has that version, plus `latest`. A new version starts
//! whenever type, content, size, mode or link target differ from the
//! previous snapshot's (a file that changes back is a new version again).
//!
//! Cost: listing a history directory loads the tree of that directory from
//! every snapshot — but unchanged directories share one tree id, and each
//! distinct tree is loaded once (and cached).

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsString;
use std::sync::Arc;

use cairn_core::format::tree::{Node, Tree};
use cairn_core::tree::check_name;
use cairn_core::TreeId;

use crate::error::FsResult;
use crate::layout::SnapInfo;
use crate::timefmt;

/// Name of the history view's top directory.
pub const HISTORY: &str = "history";

/// One directory of the history view: the trees of the same path in
/// several snapshots (indices into `snaps`, in snapshot order).
#[derive(Debug)]
pub struct HistSources {
    pub snaps: Arc<Vec<SnapInfo>>,
    pub trees: Vec<(usize, TreeId)>,
}

/// One version of a file in the history view.
#[derive(Debug, Clone)]
pub struct Version {
    /// Entry name: the time of the first snapshot with this version.
    pub name: OsString,
    /// Index of that snapshot.
    pub snap: usize,
    pub node: Arc<Node>,
}

/// One entry of a history directory.
#[derive(Debug)]
pub enum HistItem {
    /// A directory in at least one snapshot.
    Dir {
        name: OsString,
        sources: HistSources,
    },
    /// A non-directory: its versions, oldest first (never empty).
    File {
        name: OsString,
        versions: Vec<Version>,
    },
}

/// The entries of a history directory, sorted by name.
pub fn expand(
    dir: &HistSources,
    load_tree: impl Fn(&TreeId) -> FsResult<Arc<Tree>>,
    time_template: &str,
) -> FsResult<Vec<HistItem>> {
    // name -> (directory sources, (snapshot, node) of non-directories)
    type Seen = (Vec<(usize, TreeId)>, Vec<(usize, Arc<Node>)>);
    let mut names: BTreeMap<OsString, Seen> = BTreeMap::new();
    let mut last: Option<(TreeId, Arc<Tree>)> = None;
    for &(snap, tree_id) in &dir.trees {
        let tree = match &last {
            Some((id, t)) if *id == tree_id => t.clone(),
            _ => {
                let t = load_tree(&tree_id)?;
                last = Some((tree_id, t.clone()));
                t
            }
        };
        let mut in_tree = HashSet::new();
        for node in &tree.nodes {
            if let Err(why) = check_name(&node.name) {
                log::warn!("tree {tree_id}: skipping entry {:?}: {why}", node.name);
                continue;
            }
            if !in_tree.insert(&node.name) {
                log::warn!("tree {tree_id}: skipping duplicate name {:?}", node.name);
                continue;
            }
            let seen = names.entry(node.name.clone()).or_default();
            match (node.is_dir(), node.subtree) {
                (true, Some(sub)) => seen.0.push((snap, sub)),
                (true, None) => {}
                (false, _) => seen.1.push((snap, Arc::new(node.clone()))),
            }
        }
    }
    Ok(names
        .into_iter()
        .filter_map(|(name, (dirs, files))| {
            if !dirs.is_empty() {
                Some(HistItem::Dir {
                    name,
                    sources: HistSources {
                        snaps: dir.snaps.clone(),
                        trees: dirs,
                    },
                })
            } else if !files.is_empty() {
                let versions = versions(&dir.snaps, files, time_template);
                Some(HistItem::File { name, versions })
            } else {
                None
            }
        })
        .collect())
}

/// Collapse consecutive equal versions and name each by its first time.
fn versions(
    snaps: &[SnapInfo],
    seen: Vec<(usize, Arc<Node>)>,
    time_template: &str,
) -> Vec<Version> {
    let mut out: Vec<Version> = Vec::new();
    let mut used = HashSet::new();
    for (snap, node) in seen {
        if out.last().is_some_and(|v| same_version(&v.node, &node)) {
            continue;
        }
        let Some(info) = snaps.get(snap) else {
            continue;
        };
        let base = timefmt::format(info.time().as_datetime(), time_template).replace('/', "_");
        let mut name = base.clone();
        let mut n = 0;
        while !used.insert(name.clone()) || check_name(name.as_ref()).is_err() {
            n += 1;
            name = format!("{base}-{n}");
        }
        out.push(Version {
            name: name.into(),
            snap,
            node,
        });
    }
    out
}

fn same_version(a: &Node, b: &Node) -> bool {
    a.node_type == b.node_type
        && a.content == b.content
        && a.size == b.size
        && a.mode == b.mode
        && a.link_target == b.link_target
        && a.device == b.device
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_core::format::snapshot::Snapshot;
    use cairn_core::format::time::GoTime;
    use cairn_core::format::tree::NodeType;
    use cairn_core::{BlobId, Id, SnapshotId};
    use std::collections::HashMap;

    fn file(name: &str, content: u8) -> Node {
        let mut n = Node::new(name, NodeType::File);
        n.content = Some(vec![BlobId(Id::hash(&[content]))]);
        n.size = 1;
        n
    }

    fn dir(name: &str, sub: u8) -> Node {
        let mut n = Node::new(name, NodeType::Dir);
        n.subtree = Some(TreeId(Id::hash(&[sub, sub, sub])));
        n
    }

    #[test]
    fn merges_dirs_and_collapses_versions() {
        let snaps: Vec<SnapInfo> = (0..4)
            .map(|i| SnapInfo {
                id: SnapshotId(Id::hash(&[i])),
                snapshot: Snapshot::new(
                    GoTime::parse(&format!("2024-01-0{}T00:00:00Z", i + 1)).unwrap(),
                    TreeId(Id::hash(&[i])),
                    vec![],
                ),
            })
            .collect();
        let t = |n: u8| TreeId(Id::hash(&[100 + n]));
        let mut trees: HashMap<TreeId, Arc<Tree>> = HashMap::new();
        let mut bad = file("a", 1);
        bad.name = "x/y".into();
        trees.insert(
            t(0),
            Arc::new(Tree {
                nodes: vec![file("a", 1), dir("d", 1), bad],
            }),
        );
        trees.insert(
            t(1),
            Arc::new(Tree {
                nodes: vec![file("a", 1), file("d", 5)],
            }),
        );
        trees.insert(
            t(2),
            Arc::new(Tree {
                nodes: vec![file("a", 2), file("a", 9)],
            }),
        );
        trees.insert(
            t(3),
            Arc::new(Tree {
                nodes: vec![file("a", 1), dir("d", 2)],
            }),
        );
        let sources = HistSources {
            snaps: Arc::new(snaps),
            trees: (0..4).map(|i| (i as usize, t(i))).collect(),
        };
        let items = expand(&sources, |id| Ok(trees[id].clone()), "2006-01-02").unwrap();
        assert_eq!(items.len(), 2);
        match &items[0] {
            HistItem::File { name, versions } => {
                assert_eq!(name, "a");
                let names: Vec<_> = versions.iter().map(|v| v.name.clone()).collect();
                assert_eq!(names, ["2024-01-01", "2024-01-03", "2024-01-04"]);
                assert_eq!(versions[1].snap, 2);
            }
            other => panic!("{other:?}"),
        }
        match &items[1] {
            HistItem::Dir { name, sources } => {
                assert_eq!(name, "d");
                assert_eq!(sources.trees.len(), 2, "the file version of d is shadowed");
            }
            other => panic!("{other:?}"),
        }
    }
}
