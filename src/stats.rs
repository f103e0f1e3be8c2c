//! Repository statistics over snapshots, as `restic stats` (0.14) counts
//! them in its four modes ([`Mode`]):
//! - `restore-size`: every node counts as a file; sizes are the nodes'
//!   sizes, each inode counted once per snapshot (inode 0 always);
//! - `files-by-contents`: nodes with distinct content lists, counted once
//!   over all snapshots, with their sizes;
//! - `blobs-per-file`: for those distinct files, each (file, blob) pair's
//!   plaintext size once;
//! - `raw-data`: the distinct blobs (trees and data) the snapshots use,
//!   with their stored (encrypted, possibly compressed) sizes.
//!
//! Trees are walked depth first with [`crate::tree::walk`], so node names
//! are checked and recursion is bounded; `raw-data` visits each distinct
//! tree once.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::blob::{BlobHandle, BlobType};
use crate::error::{Error, Result};
use crate::format::tree::NodeType;
use crate::id::{BlobId, TreeId};
use crate::repository::Repository;
use crate::tree::MAX_DEPTH;

/// What `stats` counts (`--mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    #[default]
    RestoreSize,
    FilesByContents,
    BlobsPerFile,
    RawData,
}

impl std::str::FromStr for Mode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Mode> {
        match s {
            "restore-size" => Ok(Mode::RestoreSize),
            "files-by-contents" => Ok(Mode::FilesByContents),
            "blobs-per-file" => Ok(Mode::BlobsPerFile),
            "raw-data" => Ok(Mode::RawData),
            _ => Err(Error::InvalidArgument(format!(
                "unknown counting mode: {s} (use restore-size, files-by-contents, blobs-per-file or raw-data)"
            ))),
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::RestoreSize => "restore-size",
            Mode::FilesByContents => "files-by-contents",
            Mode::BlobsPerFile => "blobs-per-file",
            Mode::RawData => "raw-data",
        })
    }
}

/// The result, with restic's JSON names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub total_size: u64,
    pub total_file_count: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub total_blob_count: u64,
    pub snapshots_count: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// Accumulates statistics snapshot by snapshot.
pub struct Counter {
    mode: Mode,
    stats: Stats,
    unique_files: HashSet<[u8; 32]>,
    file_blobs: HashMap<String, HashSet<BlobId>>,
    blobs: HashSet<BlobHandle>,
    seen_trees: HashSet<TreeId>,
}

impl Counter {
    pub fn new(mode: Mode) -> Counter {
        Counter {
            mode,
            stats: Stats::default(),
            unique_files: HashSet::new(),
            file_blobs: HashMap::new(),
            blobs: HashSet::new(),
            seen_trees: HashSet::new(),
        }
    }

    /// Count the snapshot whose root tree is `root`. Unusable node names
    /// go to `skip`.
    pub fn add_snapshot(
        &mut self,
        repo: &Repository,
        root: &TreeId,
        skip: &mut dyn FnMut(String),
    ) -> Result<()> {
        self.stats.snapshots_count += 1;
        if self.mode == Mode::RawData {
            return self.used_blobs(repo, root, 0);
        }
        let mut inodes: HashSet<u64> = HashSet::new();
        let mode = self.mode;
        crate::tree::walk(
            repo,
            root,
            &mut |entry| {
                let node = &entry.node;
                match mode {
                    Mode::RestoreSize => {
                        self.stats.total_file_count += 1;
                        if inodes.insert(node.inode) || node.inode == 0 {
                            self.stats.total_size += node.size;
                        }
                    }
                    Mode::FilesByContents | Mode::BlobsPerFile => {
                        let mut hasher = Sha256::new();
                        for id in node.content() {
                            hasher.update(id.0 .0);
                        }
                        if self.unique_files.insert(hasher.finalize().into()) {
                            self.count_file(repo, entry)?;
                        }
                    }
                    Mode::RawData => {}
                }
                Ok(true)
            },
            &mut |dir, name, why| skip(format!("/{}/{name:?}: {why}", dir.display())),
        )
    }

    fn count_file(&mut self, repo: &Repository, entry: &crate::tree::WalkEntry) -> Result<()> {
        let node = &entry.node;
        if self.mode == Mode::FilesByContents {
            self.stats.total_size += node.size;
            self.stats.total_file_count += 1;
            return Ok(());
        }
        let path = entry.path.to_string_lossy().into_owned();
        for id in node.content() {
            let blobs = self.file_blobs.entry(path.clone()).or_insert_with(|| {
                self.stats.total_file_count += 1;
                HashSet::new()
            });
            if blobs.insert(*id) {
                let entry = repo
                    .lookup(&BlobHandle::new(BlobType::Data, *id))
                    .ok_or_else(|| Error::BlobNotInIndex(format!("data {id}")))?;
                self.stats.total_size += u64::from(entry.plaintext_len());
                self.stats.total_blob_count += 1;
            }
        }
        Ok(())
    }

    /// Collect the blobs of a tree (once per distinct tree).
    fn used_blobs(&mut self, repo: &Repository, id: &TreeId, depth: usize) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(Error::corrupt(
                format!("tree {id}"),
                format!("nested deeper than {MAX_DEPTH} levels"),
            ));
        }
        if !self.seen_trees.insert(*id) {
            return Ok(());
        }
        self.blobs
            .insert(BlobHandle::new(BlobType::Tree, BlobId::from(*id)));
        for node in repo.load_tree(id)?.nodes {
            match node.node_type {
                NodeType::File => {
                    for blob in node.content() {
                        self.blobs.insert(BlobHandle::new(BlobType::Data, *blob));
                    }
                }
                NodeType::Dir => {
                    if let Some(subtree) = node.subtree {
                        self.used_blobs(repo, &subtree, depth + 1)?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The final numbers.
    pub fn finish(mut self, repo: &Repository) -> Result<Stats> {
        if self.mode == Mode::RawData {
            for handle in &self.blobs {
                let entry = repo
                    .lookup(handle)
                    .ok_or_else(|| Error::BlobNotInIndex(handle.to_string()))?;
                self.stats.total_size += u64::from(entry.length);
                self.stats.total_blob_count += 1;
            }
        }
        Ok(self.stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::tree::{Node, Tree};
    use crate::testutil::{file_node, mem_repo};

    fn repo() -> Repository {
        mem_repo(1).1
    }

    fn file(repo: &Repository, name: &str, chunks: &[&[u8]], inode: u64) -> Node {
        let mut node = file_node(repo, name, chunks);
        node.inode = inode;
        node
    }

    fn count(repo: &Repository, roots: &[TreeId], mode: Mode) -> Stats {
        let mut counter = Counter::new(mode);
        for root in roots {
            counter
                .add_snapshot(repo, root, &mut |s| panic!("{s}"))
                .unwrap();
        }
        counter.finish(repo).unwrap()
    }

    #[test]
    fn the_four_modes_count_like_restic() {
        let repo = repo();
        let sub = repo
            .save_tree(&Tree {
                nodes: vec![file(&repo, "c", &[b"aaaa", b"bb"], 3)],
            })
            .unwrap();
        let mut dir = Node::new("d", NodeType::Dir);
        dir.subtree = Some(sub);
        dir.inode = 9;
        let root1 = repo
            .save_tree(&Tree {
                nodes: vec![
                    file(&repo, "a", &[b"aaaa"], 1),
                    // A hard link of "a": same inode, counted once.
                    file(&repo, "a2", &[b"aaaa"], 1),
                    dir,
                ],
            })
            .unwrap();
        let root2 = repo
            .save_tree(&Tree {
                nodes: vec![file(&repo, "a", &[b"aaaa"], 1)],
            })
            .unwrap();
        repo.flush().unwrap();
        let roots = [root1, root2];

        let s = count(&repo, &roots, Mode::RestoreSize);
        assert_eq!(
            (s.snapshots_count, s.total_file_count, s.total_size),
            (2, 5, 4 + 6 + 4)
        );
        // Distinct content lists: [aaaa], [] (the directory), [aaaa, bb].
        let s = count(&repo, &roots, Mode::FilesByContents);
        assert_eq!((s.total_file_count, s.total_size), (3, 4 + 6));
        let s = count(&repo, &roots, Mode::BlobsPerFile);
        assert_eq!(
            (s.total_file_count, s.total_blob_count, s.total_size),
            (2, 3, 4 + 4 + 2)
        );
        // Blobs: 2 data, 3 trees; stored sizes include 32 bytes overhead.
        let s = count(&repo, &roots, Mode::RawData);
        assert_eq!(s.total_blob_count, 5);
        assert!(s.total_size > 5 * 32, "{s:?}");
        assert_eq!(s.total_file_count, 0);
    }

    #[test]
    fn modes_parse() {
        for m in [
            "restore-size",
            "files-by-contents",
            "blobs-per-file",
            "raw-data",
        ] {
            assert_eq!(m.parse::<Mode>().unwrap().to_string(), m);
        }
        assert!("bogus".parse::<Mode>().is_err());
    }
}
