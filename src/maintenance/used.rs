//! The blobs snapshots still need: every tree reachable from their root
//! trees and every data blob those trees' files list.
//!
//! Trees are loaded breadth first, one level per round, by the worker pool,
//! through the repository's in-memory index (which must be loaded). Each
//! distinct tree is loaded once however many snapshots share it. A tree that
//! cannot be loaded is an error: acting on an incomplete set would delete
//! data that is still needed.

use std::collections::HashSet;

use crate::blob::{BlobHandle, BlobType};
use crate::error::{Error, Result};
use crate::id::{BlobId, TreeId};
use crate::repository::Repository;

use super::parallel;

/// Every blob reachable from `roots`, trees and data.
pub fn used_blobs(
    repo: &Repository,
    roots: impl IntoIterator<Item = TreeId>,
    threads: usize,
) -> Result<HashSet<BlobHandle>> {
    let tree_handle = |id: TreeId| BlobHandle::new(BlobType::Tree, BlobId::from(id));
    let mut used = HashSet::new();
    let mut level: Vec<TreeId> = roots
        .into_iter()
        .filter(|id| used.insert(tree_handle(*id)))
        .collect();
    let mut depth = 0;
    while !level.is_empty() {
        depth += 1;
        if depth > crate::tree::MAX_DEPTH {
            return Err(Error::corrupt(
                "snapshot trees",
                format!("nested deeper than {} levels", crate::tree::MAX_DEPTH),
            ));
        }
        let mut next = Vec::new();
        let mut first_error = None;
        parallel::map(
            threads,
            level,
            |id| {
                repo.load_tree(&id).map_err(|e| match e {
                    Error::BlobNotInIndex(_) | Error::NotFound(_) => Error::NotFound(format!(
                        "tree {id} (unable to load a tree from the repository: {e})"
                    )),
                    e => e,
                })
            },
            |loaded| match loaded {
                Err(e) => {
                    first_error.get_or_insert(e);
                }
                Ok(tree) => {
                    for node in &tree.nodes {
                        for blob in node.content() {
                            used.insert(BlobHandle::new(BlobType::Data, *blob));
                        }
                        if let Some(sub) = node.subtree {
                            if used.insert(tree_handle(sub)) {
                                next.push(sub);
                            }
                        }
                    }
                }
            },
        );
        if let Some(e) = first_error {
            return Err(e);
        }
        level = next;
    }
    Ok(used)
}
