//! Open directories along the plan's paths for the sequential stages
//! (create, metadata, delete).
//!
//! The cache keeps the chain of directories leading to the last one asked
//! for, so consecutive items in one directory (the common case: plans are
//! in depth-first order) cost no extra `openat`. Descriptors are bounded:
//! the first [`KEEP_OPEN`] levels and the innermost directory stay open;
//! deeper intermediate levels are closed and, when needed again, reopened
//! from the nearest open ancestor. A deep tree therefore costs some extra
//! opens instead of exhausting the descriptor limit.

use std::io;

use super::fsops::DirHandle;
use super::plan::Plan;

/// Levels below the target whose directory stays open.
const KEEP_OPEN: usize = 64;

pub(crate) struct DirCache {
    /// The target; `None` in a dry run into a target that does not exist.
    root: Option<DirHandle>,
    /// The chain below the root: (item index, handle if kept open). The
    /// last entry, if any, is always open.
    chain: Vec<(usize, Option<DirHandle>)>,
}

impl DirCache {
    pub fn new(root: Option<DirHandle>) -> DirCache {
        DirCache {
            root,
            chain: Vec::new(),
        }
    }

    /// The target, if it exists.
    pub fn root_handle(&self) -> Option<&DirHandle> {
        self.root.as_ref()
    }

    fn root(&self) -> io::Result<&DirHandle> {
        self.root
            .as_ref()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "the target does not exist"))
    }

    /// The directory holding items whose parent is `parent` (`None`: the
    /// target itself).
    pub fn dir(&mut self, plan: &Plan, parent: Option<usize>) -> io::Result<&DirHandle> {
        let mut wanted = Vec::new();
        let mut next = parent;
        while let Some(i) = next {
            wanted.push(i);
            next = plan.items[i].parent;
        }
        wanted.reverse();
        let common = self
            .chain
            .iter()
            .zip(&wanted)
            .take_while(|((have, _), want)| have == *want)
            .count();
        self.chain.truncate(common);
        if self.chain.last().is_some_and(|(_, h)| h.is_none()) {
            self.reopen_last(plan)?;
        }
        for &i in &wanted[self.chain.len()..] {
            let handle = self.last()?.open_dir(plan.items[i].name())?;
            let depth = self.chain.len();
            if depth > KEEP_OPEN {
                if let Some((_, previous)) = self.chain.last_mut() {
                    *previous = None;
                }
            }
            self.chain.push((i, Some(handle)));
        }
        self.last()
    }

    /// Reopen the innermost directory of the chain from its nearest open
    /// ancestor.
    fn reopen_last(&mut self, plan: &Plan) -> io::Result<()> {
        let open = self.chain.iter().rposition(|(_, h)| h.is_some());
        let start = open.map_or(0, |k| k + 1);
        let mut handle = match open {
            Some(k) => self.chain[k].1.as_ref().map(DirHandle::try_clone),
            None => Some(self.root()?.try_clone()),
        }
        .ok_or_else(|| io::Error::other("directory cache lost an open level"))??;
        for (i, _) in &self.chain[start..] {
            handle = handle.open_dir(plan.items[*i].name())?;
        }
        if let Some((_, last)) = self.chain.last_mut() {
            *last = Some(handle);
        }
        Ok(())
    }

    /// Open the directory chain to `parent` afresh, without disturbing the
    /// cached one (for the source of a hard link).
    pub fn open_separately(&self, plan: &Plan, parent: Option<usize>) -> io::Result<DirHandle> {
        let names: Vec<_> = match parent {
            Some(p) => plan.path(p),
            None => Vec::new(),
        };
        let mut handle = self.root()?.try_clone()?;
        for name in names {
            handle = handle.open_dir(name)?;
        }
        Ok(handle)
    }

    fn last(&self) -> io::Result<&DirHandle> {
        match self.chain.iter().rev().find_map(|(_, h)| h.as_ref()) {
            Some(handle) => Ok(handle),
            None => self.root(),
        }
    }
}
