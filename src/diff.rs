//! Differences between two snapshot trees, as `restic diff` (0.14) reports
//! them: one [`Change`] per added (`+`), removed (`-`), content-modified
//! (`M`), type-changed (`T`) or, with `metadata`, metadata-updated (`U`)
//! entry, in name order, directories' paths ending in `/`; and statistics
//! of added and removed files, directories, other entries, and of the blobs
//! only the first or only the second snapshot references ([`DiffStats`]).
//!
//! Trees are walked in lockstep; identical subtrees are not descended into
//! (their blobs count as common). Nodes are matched by name; if a hostile
//! tree repeats a name, the last node of that name wins, as in restic.
//! Recursion is bounded by [`MAX_DEPTH`]; an unreadable subtree is reported
//! through `warn` and skipped.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;

use crate::blob::{BlobHandle, BlobType};
use crate::error::{Error, Result};
use crate::format::tree::{Node, NodeType};
use crate::id::{BlobId, TreeId};
use crate::repository::Repository;
use crate::tree::MAX_DEPTH;

/// One changed entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// Absolute path in the snapshot; directories end in `/`.
    pub path: String,
    /// `+`, `-`, or a combination of `T`, `M`, `U`.
    pub modifier: String,
}

/// Counts for one side (restic's `DiffStat`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DiffStat {
    pub files: u64,
    pub dirs: u64,
    pub others: u64,
    pub data_blobs: u64,
    pub tree_blobs: u64,
    /// Plaintext bytes of those blobs.
    pub bytes: u64,
}

impl DiffStat {
    fn add(&mut self, node: &Node) {
        match node.node_type {
            NodeType::File => self.files += 1,
            NodeType::Dir => self.dirs += 1,
            _ => self.others += 1,
        }
    }
}

/// The statistics of a diff.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiffStats {
    pub changed_files: u64,
    pub added: DiffStat,
    pub removed: DiffStat,
}

/// restic 0.14's `Node.Equals`: every field, times as instants, extended
/// attributes as a set.
pub fn nodes_equal(a: &Node, b: &Node) -> bool {
    let xattrs = |n: &Node| -> HashSet<(String, Vec<u8>)> {
        n.extended_attributes
            .iter()
            .map(|x| (x.name.clone(), x.value.clone()))
            .collect()
    };
    a.name == b.name
        && a.node_type == b.node_type
        && a.mode == b.mode
        && a.mtime.unix() == b.mtime.unix()
        && a.atime.unix() == b.atime.unix()
        && a.ctime.unix() == b.ctime.unix()
        && a.uid == b.uid
        && a.gid == b.gid
        && a.user == b.user
        && a.group == b.group
        && a.inode == b.inode
        && a.device_id == b.device_id
        && a.size == b.size
        && a.links == b.links
        && a.link_target == b.link_target
        && a.device == b.device
        && a.content == b.content
        && a.extended_attributes.len() == b.extended_attributes.len()
        && xattrs(a) == xattrs(b)
        && a.subtree == b.subtree
        && a.error == b.error
}

/// Compare the trees `before` and `after`; every change goes to `change`,
/// problems with subtrees to `warn`. Only an unreadable root tree fails.
pub fn diff(
    repo: &Repository,
    before: &TreeId,
    after: &TreeId,
    metadata: bool,
    change: &mut dyn FnMut(Change),
    warn: &mut dyn FnMut(String),
) -> Result<DiffStats> {
    let mut differ = Differ {
        repo,
        metadata,
        change,
        warn,
        stats: DiffStats::default(),
        blobs_before: HashSet::new(),
        blobs_after: HashSet::new(),
        blobs_common: HashSet::new(),
    };
    differ
        .blobs_before
        .insert(BlobHandle::new(BlobType::Tree, BlobId::from(*before)));
    differ
        .blobs_after
        .insert(BlobHandle::new(BlobType::Tree, BlobId::from(*after)));
    differ.tree(before, after, "/", 0)?;
    let both: HashSet<BlobHandle> = differ
        .blobs_before
        .intersection(&differ.blobs_after)
        .copied()
        .collect();
    let only = |set: &HashSet<BlobHandle>| -> Vec<BlobHandle> {
        set.iter()
            .filter(|h| !both.contains(h) && !differ.blobs_common.contains(h))
            .copied()
            .collect()
    };
    let (removed, added) = (only(&differ.blobs_before), only(&differ.blobs_after));
    let mut stats = differ.stats;
    count_blobs(repo, &removed, &mut stats.removed, differ.warn);
    count_blobs(repo, &added, &mut stats.added, differ.warn);
    Ok(stats)
}

fn count_blobs(
    repo: &Repository,
    blobs: &[BlobHandle],
    stat: &mut DiffStat,
    warn: &mut dyn FnMut(String),
) {
    for handle in blobs {
        match handle.tpe {
            BlobType::Data => stat.data_blobs += 1,
            BlobType::Tree => stat.tree_blobs += 1,
        }
        match repo.lookup(handle) {
            Some(entry) => stat.bytes += u64::from(entry.plaintext_len()),
            None => warn(format!("unable to find blob size for {handle}")),
        }
    }
}

/// The blobs a node references directly.
fn add_blobs(set: &mut HashSet<BlobHandle>, node: &Node) {
    match node.node_type {
        NodeType::File => {
            for id in node.content() {
                set.insert(BlobHandle::new(BlobType::Data, *id));
            }
        }
        NodeType::Dir => {
            if let Some(subtree) = node.subtree {
                set.insert(BlobHandle::new(BlobType::Tree, BlobId::from(subtree)));
            }
        }
        _ => {}
    }
}

/// `prefix` joined with `name` like Go's `path.Join` (prefix is absolute).
fn join(prefix: &str, name: &str) -> String {
    let prefix = prefix.trim_end_matches('/');
    format!("{prefix}/{name}")
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Before,
    After,
}

struct Differ<'a> {
    repo: &'a Repository,
    metadata: bool,
    change: &'a mut dyn FnMut(Change),
    warn: &'a mut dyn FnMut(String),
    stats: DiffStats,
    blobs_before: HashSet<BlobHandle>,
    blobs_after: HashSet<BlobHandle>,
    blobs_common: HashSet<BlobHandle>,
}

impl Differ<'_> {
    fn emit(&mut self, path: String, modifier: &str) {
        (self.change)(Change {
            path,
            modifier: modifier.to_string(),
        });
    }

    fn load(&mut self, id: &TreeId, depth: usize) -> Result<Vec<Node>> {
        if depth > MAX_DEPTH {
            return Err(Error::corrupt(
                format!("tree {id}"),
                format!("nested deeper than {MAX_DEPTH} levels"),
            ));
        }
        Ok(self.repo.load_tree(id)?.nodes)
    }

    fn tree(&mut self, before: &TreeId, after: &TreeId, prefix: &str, depth: usize) -> Result<()> {
        let nodes1 = self.load(before, depth)?;
        let nodes2 = self.load(after, depth)?;
        let mut names: BTreeMap<&[u8], (Option<&Node>, Option<&Node>)> = BTreeMap::new();
        for node in &nodes1 {
            names.entry(node.name.as_encoded_bytes()).or_default().0 = Some(node);
        }
        for node in &nodes2 {
            names.entry(node.name.as_encoded_bytes()).or_default().1 = Some(node);
        }
        for (node1, node2) in names.into_values() {
            if let Some(n) = node1 {
                add_blobs(&mut self.blobs_before, n);
            }
            if let Some(n) = node2 {
                add_blobs(&mut self.blobs_after, n);
            }
            match (node1, node2) {
                (Some(n1), Some(n2)) => self.both(n1, n2, prefix, depth),
                (Some(n1), None) => self.one_side(n1, prefix, Side::Before, depth),
                (None, Some(n2)) => self.one_side(n2, prefix, Side::After, depth),
                (None, None) => {}
            }
        }
        Ok(())
    }

    fn both(&mut self, n1: &Node, n2: &Node, prefix: &str, depth: usize) {
        let mut path = join(prefix, &n2.name.to_string_lossy());
        let mut modifier = String::new();
        if n1.node_type != n2.node_type {
            modifier.push('T');
        }
        if n2.node_type == NodeType::Dir {
            path.push('/');
        }
        if n1.node_type == NodeType::File
            && n2.node_type == NodeType::File
            && n1.content != n2.content
        {
            modifier.push('M');
            self.stats.changed_files += 1;
        } else if self.metadata && !nodes_equal(n1, n2) {
            modifier.push('U');
        }
        if !modifier.is_empty() {
            self.emit(path.clone(), &modifier);
        }
        if n1.node_type == NodeType::Dir && n2.node_type == NodeType::Dir {
            let (Some(t1), Some(t2)) = (n1.subtree, n2.subtree) else {
                return (self.warn)(format!("{path}: directory without subtree"));
            };
            let result = if t1 == t2 {
                self.collect(&t1, depth + 1)
            } else {
                self.tree(&t1, &t2, &path, depth + 1)
            };
            if let Err(e) = result {
                (self.warn)(format!("error: {e}"));
            }
        }
    }

    fn one_side(&mut self, node: &Node, prefix: &str, side: Side, depth: usize) {
        let mut path = join(prefix, &node.name.to_string_lossy());
        if node.node_type == NodeType::Dir {
            path.push('/');
        }
        let modifier = if side == Side::Before { "-" } else { "+" };
        self.emit(path.clone(), modifier);
        self.stat(side).add(node);
        if node.node_type == NodeType::Dir {
            if let Some(subtree) = node.subtree {
                if let Err(e) = self.print_dir(&subtree, &path, side, depth + 1) {
                    (self.warn)(format!("error: {e}"));
                }
            }
        }
    }

    fn stat(&mut self, side: Side) -> &mut DiffStat {
        match side {
            Side::Before => &mut self.stats.removed,
            Side::After => &mut self.stats.added,
        }
    }

    /// Everything below a directory only one side has.
    fn print_dir(&mut self, id: &TreeId, prefix: &str, side: Side, depth: usize) -> Result<()> {
        let modifier = if side == Side::Before { "-" } else { "+" };
        for node in self.load(id, depth)? {
            let mut path = join(prefix, &node.name.to_string_lossy());
            if node.node_type == NodeType::Dir {
                path.push('/');
            }
            self.emit(path.clone(), modifier);
            self.stat(side).add(&node);
            let blobs = match side {
                Side::Before => &mut self.blobs_before,
                Side::After => &mut self.blobs_after,
            };
            add_blobs(blobs, &node);
            if node.node_type == NodeType::Dir {
                if let Some(subtree) = node.subtree {
                    if let Err(e) = self.print_dir(&subtree, &path, side, depth + 1) {
                        (self.warn)(format!("error: {e}"));
                    }
                }
            }
        }
        Ok(())
    }

    /// The blobs of a subtree both sides share.
    fn collect(&mut self, id: &TreeId, depth: usize) -> Result<()> {
        for node in self.load(id, depth)? {
            add_blobs(&mut self.blobs_common, &node);
            if node.node_type == NodeType::Dir {
                if let Some(subtree) = node.subtree {
                    if let Err(e) = self.collect(&subtree, depth + 1) {
                        (self.warn)(format!("error: {e}"));
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::backend::{Backend, MemBackend};
    use crate::crypto::kdf::KdfParams;
    use crate::format::tree::Tree;
    use crate::repository::InitOptions;

    fn file(repo: &Repository, name: &str, data: &[u8]) -> Node {
        let mut node = Node::new(name, NodeType::File);
        node.content = Some(vec![repo.save_blob(BlobType::Data, data).unwrap().0]);
        node.size = data.len() as u64;
        node
    }

    fn dir(repo: &Repository, name: &str, nodes: Vec<Node>) -> Node {
        let mut node = Node::new(name, NodeType::Dir);
        node.subtree = Some(repo.save_tree(&Tree { nodes }).unwrap());
        node
    }

    #[test]
    fn changes_and_statistics_like_restic() {
        let be: Arc<dyn Backend> = Arc::new(MemBackend::new());
        let opts = InitOptions {
            version: 1,
            kdf: KdfParams::insecure_fast(),
            ..InitOptions::default()
        };
        let repo = Repository::init(be, b"pw", &opts).unwrap();
        let same = dir(&repo, "same", vec![file(&repo, "x", b"x")]);
        let mut chmod = file(&repo, "chmod", b"c");
        let before = repo
            .save_tree(&Tree {
                nodes: vec![
                    same.clone(),
                    file(&repo, "edit", b"old"),
                    chmod.clone(),
                    dir(&repo, "gone", vec![file(&repo, "g", b"gone")]),
                    file(&repo, "kind", b"k"),
                ],
            })
            .unwrap();
        chmod.mode = 0o600;
        let mut link = Node::new("kind", NodeType::Symlink);
        link.link_target = "edit".into();
        let after = repo
            .save_tree(&Tree {
                nodes: vec![
                    same,
                    file(&repo, "edit", b"new"),
                    chmod,
                    link,
                    file(&repo, "added", b"added"),
                ],
            })
            .unwrap();
        repo.flush().unwrap();
        let run = |metadata: bool| {
            let mut changes = Vec::new();
            let stats = diff(
                &repo,
                &before,
                &after,
                metadata,
                &mut |c| changes.push(format!("{:<5}{}", c.modifier, c.path)),
                &mut |w| panic!("{w}"),
            )
            .unwrap();
            (changes, stats)
        };
        let (changes, stats) = run(false);
        assert_eq!(
            changes,
            vec![
                "+    /added",
                "M    /edit",
                "-    /gone/",
                "-    /gone/g",
                "T    /kind"
            ]
        );
        assert_eq!(stats.changed_files, 1);
        assert_eq!(
            (stats.added.files, stats.removed.files, stats.removed.dirs),
            (1, 1, 1)
        );
        // Blobs: added "new", "added"; removed "old", "gone", "k" and the
        // "gone" tree; both root trees differ.
        assert_eq!((stats.added.data_blobs, stats.removed.data_blobs), (2, 3));
        assert_eq!((stats.added.tree_blobs, stats.removed.tree_blobs), (1, 2));
        let (changes, _) = run(true);
        assert!(changes.contains(&"U    /chmod".to_string()), "{changes:?}");
    }
}
