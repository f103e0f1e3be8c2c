//! Loading the snapshot's trees ahead of the planning walk, on helper
//! threads.
//!
//! Planning is a sequential depth-first walk, and loading a tree (read,
//! decrypt, decompress, parse) is most of its time. When the walk enters a
//! directory it announces the subtrees it will descend into
//! ([`Prefetch::want`]); helper threads load them in that order while the
//! walk goes on, and [`Prefetch::get`] hands a loaded tree over (or waits
//! for one being loaded). A tree nobody has started loading yet is loaded
//! by the walk itself, so the walk never waits for a queue.
//!
//! Memory stays bounded: at most [`MAX_AHEAD`] trees are queued or held
//! for the walk; beyond that, subtrees are simply not announced and the
//! walk loads them when it gets there. Results are exactly what
//! [`Repository::load_tree`] returns (errors included), so the walk's
//! checks and reports do not change.

use std::collections::{HashMap, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard};

use crate::error::Result;
use crate::format::tree::Tree;
use crate::id::TreeId;
use crate::repository::Repository;

/// Trees queued or loaded ahead of the walk, at most.
pub(super) const MAX_AHEAD: usize = 256;

/// The state of one announced tree.
enum Slot {
    Queued,
    Loading,
    Done(Result<Tree>),
}

#[derive(Default)]
struct State {
    trees: HashMap<TreeId, Slot>,
    queue: VecDeque<TreeId>,
    closed: bool,
}

/// Trees being loaded ahead; shared by the walk and the helpers.
#[derive(Default)]
pub(super) struct Prefetch {
    state: Mutex<State>,
    changed: Condvar,
}

impl Prefetch {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A helper that panicked cannot leave the map inconsistent in a way
        // that matters: the walk loads what it does not find.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Announce trees the walk will need, in the order it will need them.
    pub fn want(&self, ids: impl IntoIterator<Item = TreeId>) {
        let mut state = self.lock();
        if state.closed {
            return;
        }
        for id in ids {
            if state.trees.len() >= MAX_AHEAD {
                break;
            }
            if let std::collections::hash_map::Entry::Vacant(slot) = state.trees.entry(id) {
                slot.insert(Slot::Queued);
                state.queue.push_back(id);
            }
        }
        drop(state);
        self.changed.notify_all();
    }

    /// The tree `id`: loaded ahead, being loaded (waits), or loaded now.
    pub fn get(&self, repo: &Repository, id: &TreeId) -> Result<Tree> {
        let mut state = self.lock();
        loop {
            match state.trees.remove(id) {
                Some(Slot::Done(tree)) => return tree,
                Some(Slot::Loading) => {
                    state.trees.insert(*id, Slot::Loading);
                    state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
                }
                // Not announced, or nobody started it (it stays in the
                // queue; helpers skip it): load it here.
                Some(Slot::Queued) | None => {
                    drop(state);
                    return repo.load_tree(id);
                }
            }
        }
    }

    /// A helper: load queued trees until [`close`](Self::close).
    pub fn help(&self, repo: &Repository) {
        let mut state = self.lock();
        loop {
            let Some(id) = state.queue.pop_front() else {
                if state.closed {
                    return;
                }
                state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
                continue;
            };
            match state.trees.get_mut(&id) {
                Some(slot @ Slot::Queued) => *slot = Slot::Loading,
                // Taken by the walk meanwhile.
                _ => continue,
            }
            drop(state);
            let tree = repo.load_tree(&id);
            state = self.lock();
            if let Some(slot) = state.trees.get_mut(&id) {
                *slot = Slot::Done(tree);
            }
            self.changed.notify_all();
        }
    }

    /// The walk is over: helpers stop, loaded trees are dropped.
    pub fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        state.queue.clear();
        state.trees.clear();
        drop(state);
        self.changed.notify_all();
    }
}

/// Helper threads for planning: the walk runs on one core, helpers on
/// the others (at least one, so loading overlaps the walk).
pub(super) fn helpers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().clamp(1, 4))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::tree::{Node, NodeType};
    use crate::restorer::tests::repo;

    #[test]
    fn trees_come_back_whether_loaded_ahead_or_not_and_errors_too() {
        let (_mem, repo) = repo();
        let ids: Vec<TreeId> = (0..20)
            .map(|i| {
                let nodes = vec![Node::new(format!("f{i}"), NodeType::File)];
                repo.save_tree(&Tree { nodes }).unwrap()
            })
            .collect();
        repo.flush().unwrap();
        let missing = TreeId(crate::id::Id::hash(b"no such tree"));
        let prefetch = Prefetch::default();
        std::thread::scope(|scope| {
            scope.spawn(|| prefetch.help(&repo));
            prefetch.want(ids.iter().copied().chain([missing]));
            for (i, id) in ids.iter().enumerate().rev() {
                let tree = prefetch.get(&repo, id).unwrap();
                assert_eq!(tree.nodes[0].name, format!("f{i}").as_str());
            }
            assert!(prefetch.get(&repo, &missing).is_err());
            // Not announced: loaded by the caller.
            assert_eq!(prefetch.get(&repo, &ids[3]).unwrap().nodes.len(), 1);
            prefetch.close();
        });
        assert!(prefetch.lock().trees.is_empty());
    }

    #[test]
    fn at_most_max_ahead_trees_are_announced() {
        let prefetch = Prefetch::default();
        let ids = (0..MAX_AHEAD as u32 + 10).map(|i| TreeId(crate::id::Id::hash(&i.to_le_bytes())));
        prefetch.want(ids);
        assert_eq!(prefetch.lock().trees.len(), MAX_AHEAD);
        assert_eq!(prefetch.lock().queue.len(), MAX_AHEAD);
    }
}
