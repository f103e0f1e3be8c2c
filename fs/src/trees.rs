//! Decoded trees: a cache bounded in bytes, and read-ahead one level down.
//!
//! [`TreeCache`] holds decoded trees, weighted by an estimate of their size
//! in memory, evicting the least recently used. Trees are loaded one at a
//! time ([`TreeCache::get`]) or many at a time ([`TreeCache::load_many`]:
//! the subdirectories of a directory being listed, whose trees usually lie
//! side by side in one pack and come with one ranged read). A batch being
//! loaded is *in flight*: a `get` for one of its trees waits for it instead
//! of loading the tree a second time.
//!
//! [`TreeAhead`] loads trees in the background. Listing a directory with
//! attributes loads its subdirectories' trees (their link counts need
//! them); the trees one level further down are then queued here, so a walk
//! that descends (`find`, `du`, `ls -R`, `rsync`) finds them decoded,
//! loaded on another core while the kernel and the walker were busy with
//! the listing, instead of waiting for them in its next listing.

use std::collections::hash_map::Entry as MapEntry;
use std::collections::HashMap;
use std::sync::Arc;

use cairn_core::format::tree::Tree;
use cairn_core::repository::Repository;
use cairn_core::{BlobHandle, BlobId, BlobType, TreeId};
use crossbeam_channel::{Sender, TrySendError};
use moka::sync::Cache;
use parking_lot::{Condvar, Mutex};

use crate::cache::{log_blob_error, lru};
use crate::error::FsResult;

/// One batch load in flight: `done` once its trees are in the cache (or
/// failed to load).
#[derive(Default)]
struct Flight {
    done: Mutex<bool>,
    landed: Condvar,
}

impl Flight {
    fn wait(&self) {
        let mut done = self.done.lock();
        while !*done {
            self.landed.wait(&mut done);
        }
    }
}

/// Decoded trees, at most about `capacity` bytes.
pub struct TreeCache {
    repo: Arc<Repository>,
    cache: Cache<TreeId, Arc<Tree>>,
    inflight: Mutex<HashMap<TreeId, Arc<Flight>>>,
}

/// Trees claimed by one batch. Dropping it lands the flights: by then the
/// loaded trees are in the cache; waiters for the others load them
/// themselves (and meet the error).
struct Claim<'a> {
    trees: &'a TreeCache,
    ids: Vec<TreeId>,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        let mut inflight = self.trees.inflight.lock();
        for id in &self.ids {
            if let Some(flight) = inflight.remove(id) {
                *flight.done.lock() = true;
                flight.landed.notify_all();
            }
        }
    }
}

impl TreeCache {
    /// A cache holding about `capacity` bytes of decoded trees.
    pub fn new(repo: Arc<Repository>, capacity: u64) -> Self {
        TreeCache {
            repo,
            cache: lru(capacity, |t: &Arc<Tree>| tree_weight(t)),
            inflight: Mutex::new(HashMap::new()),
        }
    }

    /// The decoded tree: from the cache, from a batch in flight, or loaded
    /// now (concurrent `get`s of one tree share one load).
    pub fn get(&self, id: &TreeId) -> FsResult<Arc<Tree>> {
        if let Some(tree) = self.loaded(id) {
            return Ok(tree);
        }
        let repo = &self.repo;
        Ok(self.cache.try_get_with(*id, || {
            load_tree(repo, id)
                .map(Arc::new)
                .inspect_err(|e| log_blob_error(repo, BlobType::Tree, &BlobId::from(*id), e))
        })?)
    }

    /// Load the trees of `ids` that are neither cached nor in flight, with
    /// as few backend reads as possible. Failures are left for
    /// [`get`](Self::get) to meet and report.
    pub fn load_many(&self, ids: impl IntoIterator<Item = TreeId>) {
        let mut claim = Claim {
            trees: self,
            ids: Vec::new(),
        };
        {
            let mut inflight = self.inflight.lock();
            for id in ids {
                if self.cache.contains_key(&id) {
                    continue;
                }
                if let MapEntry::Vacant(slot) = inflight.entry(id) {
                    slot.insert(Arc::default());
                    claim.ids.push(id);
                }
            }
        }
        if claim.ids.is_empty() {
            return;
        }
        let handles: Vec<BlobHandle> = claim
            .ids
            .iter()
            .map(|id| BlobHandle::new(BlobType::Tree, BlobId::from(*id)))
            .collect();
        let loaded = self.repo.load_blobs(&handles);
        for (id, data) in claim.ids.iter().zip(loaded) {
            if let Ok(tree) = data.and_then(|d| parse_tree(id, &d)) {
                self.cache.insert(*id, Arc::new(tree));
            }
        }
    }

    /// The tree if it is cached or in flight (waiting for that load);
    /// never loads it.
    pub fn loaded(&self, id: &TreeId) -> Option<Arc<Tree>> {
        if let Some(tree) = self.cache.get(id) {
            return Some(tree);
        }
        let flight = self.inflight.lock().get(id).cloned();
        flight?.wait();
        self.cache.get(id)
    }

    /// True if the tree is cached (for tests).
    pub fn contains(&self, id: &TreeId) -> bool {
        self.cache.contains_key(id)
    }

    /// Forget every cached tree (after the index was reloaded).
    pub fn clear(&self) {
        self.cache.invalidate_all();
    }
}

/// Jobs queued for [`TreeAhead`] at most; more are dropped (read-ahead is
/// a hint, and a walk this far behind has moved elsewhere).
const AHEAD_QUEUE: usize = 256;

/// A background thread loading trees into a [`TreeCache`].
pub struct TreeAhead {
    tx: Option<Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// What the read-ahead thread is asked to do.
enum Job {
    /// Load these trees as one batch.
    Load(Vec<TreeId>),
    /// Say when everything queued before is done.
    Settle(Sender<()>),
}

impl TreeAhead {
    /// Start the thread (`enabled` false: queued jobs are ignored).
    pub fn new(trees: Arc<TreeCache>, enabled: bool) -> Self {
        if !enabled {
            return TreeAhead {
                tx: None,
                thread: None,
            };
        }
        let (tx, rx) = crossbeam_channel::bounded::<Job>(AHEAD_QUEUE);
        let thread = std::thread::Builder::new()
            .name("cairn-tree-ahead".into())
            .spawn(move || {
                for job in rx {
                    match job {
                        Job::Load(ids) => trees.load_many(ids),
                        Job::Settle(done) => drop(done.send(())),
                    }
                }
            })
            .ok();
        TreeAhead {
            tx: thread.is_some().then_some(tx),
            thread,
        }
    }

    /// Queue `jobs`, each loaded as one batch in order (one per directory,
    /// so a walker needing one directory's trees waits for that batch
    /// only).
    pub fn fetch(&self, jobs: impl IntoIterator<Item = Vec<TreeId>>) {
        let Some(tx) = &self.tx else { return };
        for job in jobs {
            match tx.try_send(Job::Load(job)) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {}
                Err(TrySendError::Disconnected(_)) => return,
            }
        }
    }

    /// Wait until the jobs queued so far are done (for tests).
    pub fn settle(&self) {
        let Some(tx) = &self.tx else { return };
        let (done, settled) = crossbeam_channel::bounded(1);
        if tx.send(Job::Settle(done)).is_ok() {
            let _ = settled.recv();
        }
    }
}

impl Drop for TreeAhead {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Load and parse a tree through the batched read path (which reuses its
/// decompression context instead of making one per blob).
fn load_tree(repo: &Repository, id: &TreeId) -> cairn_core::Result<Tree> {
    let handle = BlobHandle::new(BlobType::Tree, BlobId::from(*id));
    let data = repo
        .load_blobs(&[handle])
        .pop()
        .unwrap_or_else(|| Err(cairn_core::Error::BlobNotInIndex(handle.id.to_string())))?;
    parse_tree(id, &data)
}

fn parse_tree(id: &TreeId, data: &[u8]) -> cairn_core::Result<Tree> {
    Tree::from_json(data).map_err(|e| cairn_core::Error::corrupt(format!("tree {id}"), e))
}

/// An estimate of a decoded tree's heap size.
fn tree_weight(tree: &Tree) -> usize {
    tree.nodes
        .iter()
        .map(|n| {
            std::mem::size_of_val(n)
                + n.name.len()
                + n.link_target.len()
                + n.user.len()
                + n.group.len()
                + n.content().len() * 32
                + n.extended_attributes
                    .iter()
                    .map(|a| a.name.len() + a.value.len() + 48)
                    .sum::<usize>()
        })
        .sum::<usize>()
        + 64
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_core::backend::MemBackend;
    use cairn_core::crypto::kdf::KdfParams;
    use cairn_core::format::tree::{Node, NodeType};
    use cairn_core::repository::InitOptions;

    /// A repository with one single-entry tree per name, and their ids.
    fn repo_with_trees(names: &[&str]) -> (Arc<Repository>, Vec<Tree>, Vec<TreeId>) {
        let opts = InitOptions {
            kdf: KdfParams::insecure_fast(),
            ..InitOptions::default()
        };
        let repo = Repository::init(Arc::new(MemBackend::new()), b"pw", &opts).unwrap();
        let trees: Vec<Tree> = names
            .iter()
            .map(|name| Tree {
                nodes: vec![Node::new(name, NodeType::Fifo)],
            })
            .collect();
        let ids = trees.iter().map(|t| repo.save_tree(t).unwrap()).collect();
        repo.flush().unwrap();
        (Arc::new(repo), trees, ids)
    }

    fn unknown() -> TreeId {
        TreeId::from(BlobId(cairn_core::Id::hash(b"no such tree")))
    }

    #[test]
    fn trees_load_in_batches() {
        let (repo, trees, ids) = repo_with_trees(&["a", "b", "c"]);
        let cache = TreeCache::new(repo, 1 << 20);
        cache.load_many(ids[..2].iter().copied().chain([ids[0], unknown()]));
        assert!(cache.contains(&ids[0]) && cache.contains(&ids[1]));
        assert!(!cache.contains(&ids[2]) && !cache.contains(&unknown()));
        assert!(cache.inflight.lock().is_empty());
        for (id, tree) in ids.iter().zip(&trees) {
            assert_eq!(cache.get(id).unwrap().nodes[0].name, tree.nodes[0].name);
        }
        assert!(cache.get(&unknown()).is_err());
    }

    #[test]
    fn a_get_waits_for_the_batch_in_flight() {
        let (repo, trees, ids) = repo_with_trees(&["a", "b"]);
        let cache = TreeCache::new(repo, 1 << 20);
        // A batch holds `a` and `b` in flight and delivers a tree of its
        // own for `a`: the waiting `get` must return that one, not load.
        let claim = Claim {
            trees: &cache,
            ids: ids.clone(),
        };
        for id in &ids {
            cache.inflight.lock().insert(*id, Arc::default());
        }
        let delivered = Tree {
            nodes: vec![Node::new("from the batch", NodeType::Fifo)],
        };
        std::thread::scope(|s| {
            let waiter = s.spawn(|| cache.get(&ids[0]).unwrap());
            let failed = s.spawn(|| cache.get(&ids[1]).unwrap());
            cache.cache.insert(ids[0], Arc::new(delivered.clone()));
            drop(claim);
            assert_eq!(waiter.join().unwrap().nodes[0].name, "from the batch");
            // `b` did not land: its waiter loads it itself.
            assert_eq!(failed.join().unwrap().nodes[0].name, trees[1].nodes[0].name);
        });
        assert!(cache.inflight.lock().is_empty());
    }

    #[test]
    fn read_ahead_fills_the_cache_and_skips_what_is_in_flight() {
        let (repo, _, ids) = repo_with_trees(&["a", "b", "c", "d"]);
        let cache = Arc::new(TreeCache::new(repo, 1 << 20));
        // `d` is in flight elsewhere: the read-ahead leaves it alone.
        cache.inflight.lock().insert(ids[3], Arc::default());
        let ahead = TreeAhead::new(cache.clone(), true);
        ahead.fetch([ids[..2].to_vec(), vec![ids[2], ids[3], unknown()]]);
        ahead.settle();
        assert!(ids[..3].iter().all(|id| cache.contains(id)));
        assert!(!cache.contains(&ids[3]) && !cache.contains(&unknown()));
        assert_eq!(cache.inflight.lock().len(), 1);

        let other = Arc::new(TreeCache::new(cache.repo.clone(), 1 << 20));
        let off = TreeAhead::new(other.clone(), false);
        off.fetch([ids[..2].to_vec()]);
        drop(off);
        assert!(!other.contains(&ids[0]));
    }
}
