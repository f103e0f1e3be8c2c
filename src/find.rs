//! Searching snapshots, as `restic find` (0.14) does: by path pattern
//! with optional modification-time bounds ([`find_paths`]), or by blob,
//! tree or pack id ([`IdQuery`], [`find_ids`]).
//!
//! Patterns are restic's filter patterns ([`PatternSet`]): a pattern
//! matching a directory matches everything below it, and directories no
//! pattern could match below are not descended into. Ids may be given in
//! full or as the 8-digit short form; a pack id is turned into the ids of
//! the blobs the index lists for it. Walks use [`crate::tree::walk`] (node
//! names checked, depth bounded).

use std::collections::HashSet;

use crate::blob::BlobType;
use crate::error::{Error, Result};
use crate::filter::PatternSet;
use crate::format::time::GoTime;
use crate::format::tree::{Node, NodeType};
use crate::id::{BlobId, TreeId};
use crate::repository::Repository;

/// A path search.
#[derive(Clone, Debug, Default)]
pub struct PathQuery {
    pub patterns: PatternSet,
    /// Only nodes modified at or after this (`-O`).
    pub oldest: Option<GoTime>,
    /// Only nodes modified at or before this (`-N`).
    pub newest: Option<GoTime>,
}

/// Visit every node of the tree `root` that `query` matches, with its
/// absolute path. Unusable node names go to `skip`.
pub fn find_paths(
    repo: &Repository,
    root: &TreeId,
    query: &PathQuery,
    found: &mut dyn FnMut(&str, &Node),
    skip: &mut dyn FnMut(String),
) -> Result<()> {
    crate::tree::walk(
        repo,
        root,
        &mut |entry| {
            let path = format!("/{}", entry.path.to_string_lossy());
            let node = &entry.node;
            let (matched, child) = query.patterns.matches_with_child(&path);
            let descend = node.node_type != NodeType::Dir || child || matched;
            let mtime = node.mtime.unix();
            let in_time = query.oldest.is_none_or(|t| mtime >= t.unix())
                && query.newest.is_none_or(|t| mtime <= t.unix());
            if matched && in_time {
                found(&path, node);
            }
            Ok(descend)
        },
        &mut |dir, name, why| skip(format!("/{}/{name:?}: {why}", dir.display())),
    )
}

/// Ids to look for: full 64-digit hex or 8-digit short ids.
#[derive(Clone, Debug, Default)]
pub struct IdQuery {
    blobs: HashSet<String>,
    trees: HashSet<String>,
}

/// Where an id was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hit {
    /// A data blob of the file at `path`, listed in tree `parent`.
    Blob {
        id: BlobId,
        path: String,
        parent: TreeId,
    },
    /// The tree of the directory at `path`.
    Tree { id: TreeId, path: String },
}

fn normalize(ids: &[String]) -> HashSet<String> {
    ids.iter().map(|s| s.to_ascii_lowercase()).collect()
}

impl IdQuery {
    pub fn blobs(ids: &[String]) -> IdQuery {
        IdQuery {
            blobs: normalize(ids),
            trees: HashSet::new(),
        }
    }

    pub fn trees(ids: &[String]) -> IdQuery {
        IdQuery {
            blobs: HashSet::new(),
            trees: normalize(ids),
        }
    }

    /// The blobs of the given packs, from the index. Fails naming the packs
    /// the index does not know.
    pub fn packs(repo: &Repository, packs: &[String]) -> Result<IdQuery> {
        let wanted = normalize(packs);
        let mut found_packs = HashSet::new();
        let mut blobs = HashSet::new();
        for (handle, entry) in repo.index().iter() {
            let full = entry.pack.to_hex();
            let short = entry.pack.short();
            let key = if wanted.contains(&full) {
                full
            } else if wanted.contains(&short) {
                short
            } else {
                continue;
            };
            found_packs.insert(key);
            if handle.tpe == BlobType::Data {
                blobs.insert(handle.id.to_hex());
            }
        }
        let mut missing: Vec<&String> = wanted.difference(&found_packs).collect();
        if !missing.is_empty() {
            missing.sort();
            return Err(Error::NotFound(format!(
                "unable to find pack(s): {missing:?}"
            )));
        }
        Ok(IdQuery {
            blobs,
            trees: HashSet::new(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.blobs.is_empty() && self.trees.is_empty()
    }

    /// The ids asked for, as given (for `--show-pack-id`): blob ids first.
    pub fn ids(&self) -> (Vec<String>, Vec<String>) {
        let mut blobs: Vec<String> = self.blobs.iter().cloned().collect();
        let mut trees: Vec<String> = self.trees.iter().cloned().collect();
        blobs.sort();
        trees.sort();
        (blobs, trees)
    }

    fn has(set: &HashSet<String>, hex: String) -> bool {
        set.contains(&hex[..8]) || set.contains(&hex)
    }
}

/// Visit every place in the tree `root` that holds one of the ids.
pub fn find_ids(
    repo: &Repository,
    root: &TreeId,
    query: &IdQuery,
    found: &mut dyn FnMut(Hit),
    skip: &mut dyn FnMut(String),
) -> Result<()> {
    let mut parents: Vec<(std::path::PathBuf, TreeId)> = vec![(std::path::PathBuf::new(), *root)];
    crate::tree::walk(
        repo,
        root,
        &mut |entry| {
            let node = &entry.node;
            let dir = entry.path.parent().unwrap_or(std::path::Path::new(""));
            while parents.len() > 1 && parents.last().is_some_and(|(p, _)| p != dir) {
                parents.pop();
            }
            let parent = parents.last().map_or(*root, |(_, t)| *t);
            let path = format!("/{}", entry.path.to_string_lossy());
            if node.node_type == NodeType::Dir {
                if let Some(subtree) = node.subtree {
                    if IdQuery::has(&query.trees, subtree.to_hex()) {
                        found(Hit::Tree {
                            id: subtree,
                            path: path.clone(),
                        });
                    }
                    parents.push((entry.path.clone(), subtree));
                }
            }
            if node.node_type == NodeType::File && !query.blobs.is_empty() {
                for id in node.content() {
                    if IdQuery::has(&query.blobs, id.to_hex()) {
                        found(Hit::Blob {
                            id: *id,
                            path: path.clone(),
                            parent,
                        });
                    }
                }
            }
            Ok(true)
        },
        &mut |dir, name, why| skip(format!("/{}/{name:?}: {why}", dir.display())),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::backend::{Backend, MemBackend};
    use crate::crypto::kdf::KdfParams;
    use crate::format::tree::Tree;
    use crate::repository::InitOptions;

    fn setup() -> (Repository, TreeId, TreeId, BlobId) {
        let be: Arc<dyn Backend> = Arc::new(MemBackend::new());
        let opts = InitOptions {
            version: 2,
            kdf: KdfParams::insecure_fast(),
            ..InitOptions::default()
        };
        let repo = Repository::init(be, b"pw", &opts).unwrap();
        let blob = repo.save_blob(BlobType::Data, b"needle").unwrap().0;
        let mut f = Node::new("needle.txt", NodeType::File);
        f.content = Some(vec![blob]);
        f.mtime = GoTime::from_unix_utc(1_600_000_000, 0);
        let mut old = Node::new("old.txt", NodeType::File);
        old.content = Some(vec![]);
        old.mtime = GoTime::from_unix_utc(1_000_000_000, 0);
        let sub = repo
            .save_tree(&Tree {
                nodes: vec![f, old],
            })
            .unwrap();
        let mut d = Node::new("docs", NodeType::Dir);
        d.subtree = Some(sub);
        let mut other = Node::new("readme.txt", NodeType::File);
        other.content = Some(vec![]);
        let root = repo
            .save_tree(&Tree {
                nodes: vec![d, other],
            })
            .unwrap();
        repo.flush().unwrap();
        (repo, root, sub, blob)
    }

    fn paths(repo: &Repository, root: &TreeId, query: &PathQuery) -> Vec<String> {
        let mut out = Vec::new();
        find_paths(
            repo,
            root,
            query,
            &mut |p, _| out.push(p.to_string()),
            &mut |s| panic!("{s}"),
        )
        .unwrap();
        out
    }

    #[test]
    fn patterns_and_time_bounds() {
        let (repo, root, _, _) = setup();
        let q = |p: &[&str], ci: bool| PathQuery {
            patterns: PatternSet::new(&p.iter().map(|s| s.to_string()).collect::<Vec<_>>(), ci)
                .unwrap(),
            ..PathQuery::default()
        };
        assert_eq!(
            paths(&repo, &root, &q(&["*.txt"], false)),
            vec!["/docs/needle.txt", "/docs/old.txt", "/readme.txt"]
        );
        assert_eq!(
            paths(&repo, &root, &q(&["docs"], false)),
            vec!["/docs", "/docs/needle.txt", "/docs/old.txt"]
        );
        assert_eq!(
            paths(&repo, &root, &q(&["NEEDLE*"], true)),
            vec!["/docs/needle.txt"]
        );
        let mut timed = q(&["*.txt"], false);
        timed.oldest = Some(GoTime::from_unix_utc(1_500_000_000, 0));
        timed.newest = Some(GoTime::from_unix_utc(1_700_000_000, 0));
        assert_eq!(paths(&repo, &root, &timed), vec!["/docs/needle.txt"]);
    }

    #[test]
    fn ids_by_blob_tree_and_pack() {
        let (repo, root, sub, blob) = setup();
        let collect = |q: &IdQuery| {
            let mut hits = Vec::new();
            find_ids(&repo, &root, q, &mut |h| hits.push(h), &mut |s| {
                panic!("{s}")
            })
            .unwrap();
            hits
        };
        let expected_blob = Hit::Blob {
            id: blob,
            path: "/docs/needle.txt".into(),
            parent: sub,
        };
        assert_eq!(
            collect(&IdQuery::blobs(&[blob.short()])),
            vec![expected_blob.clone()]
        );
        assert_eq!(
            collect(&IdQuery::trees(&[sub.to_hex()])),
            vec![Hit::Tree {
                id: sub,
                path: "/docs".into()
            }]
        );
        let pack = repo
            .lookup(&crate::blob::BlobHandle::new(BlobType::Data, blob))
            .unwrap()
            .pack;
        let by_pack = IdQuery::packs(&repo, &[pack.short()]).unwrap();
        assert_eq!(collect(&by_pack), vec![expected_blob]);
        assert!(IdQuery::packs(&repo, &["deadbeef".into()]).is_err());
    }
}
