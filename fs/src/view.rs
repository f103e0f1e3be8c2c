//! The made-up top of the tree: reloading the snapshot list and turning
//! the [`layout`] into pinned inodes.
//!
//! The snapshot list is reloaded (at most every `reload_interval`) when a
//! made-up directory is read or its attributes are asked for; the made-up
//! tree is rebuilt only if the list changed, and an entry under the same
//! parent and name keeps its inode number as long as it still means the
//! same thing ([`Identity`]). Made-up directories then get a new time, so
//! the kernel drops the listings it cached of them.

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::sync::Arc;
use std::time::Instant;

use cairn_core::backend::FileType as RepoFile;
use cairn_core::format::snapshot::Snapshot;
use cairn_core::format::time::GoTime;
use cairn_core::SnapshotId;

use crate::error::FsResult;
use crate::history::{HistSources, HISTORY};
use crate::inode::{Child, Entry, Ino, Kind};
use crate::layer::ReadLayer;
use crate::layout::{self, SnapInfo, VDir, VNode};

/// What an entry under a given parent and name stands for, so a reload
/// keeps its inode number only if it still means the same thing.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Identity {
    Dir,
    Snapshot(SnapshotId),
    Link(OsString),
    History(u64),
}

/// The snapshot list as last loaded, and the made-up names handed out.
#[derive(Default)]
pub(crate) struct ViewState {
    last_check: Option<Instant>,
    ids: Vec<SnapshotId>,
    known: HashMap<SnapshotId, Snapshot>,
    names: HashMap<(Ino, OsString), (Ino, Identity)>,
    generation: u64,
}

impl ReadLayer {
    /// Reload the snapshot list if `force` or the reload interval passed,
    /// and rebuild the made-up tree if it changed.
    pub fn refresh(&self, force: bool) -> FsResult<()> {
        let mut st = self.state.lock();
        if !force
            && st
                .last_check
                .is_some_and(|t| t.elapsed() < self.opts.reload_interval)
        {
            return Ok(());
        }
        st.last_check = Some(Instant::now());
        let ids: Vec<SnapshotId> = self
            .repo
            .list_ids(RepoFile::Snapshot)?
            .into_iter()
            .map(SnapshotId)
            .collect();
        if ids == st.ids && st.generation > 0 {
            return Ok(());
        }
        let first = st.generation == 0;
        let wanted: HashSet<SnapshotId> = ids.iter().copied().collect();
        st.known.retain(|id, _| wanted.contains(id));
        for id in &ids {
            if !st.known.contains_key(id) {
                match self.repo.load_snapshot(id) {
                    Ok(sn) => {
                        st.known.insert(*id, sn);
                    }
                    Err(e) => log::warn!("snapshot {}: {e}", id.short()),
                }
            }
        }
        if !first {
            // New snapshots reference blobs of index files we have not read.
            self.repo.load_index()?;
        }
        let mut snaps: Vec<SnapInfo> = st
            .known
            .iter()
            .filter(|(_, sn)| self.opts.filter.matches(sn))
            .map(|(id, sn)| SnapInfo {
                id: *id,
                snapshot: sn.clone(),
            })
            .collect();
        snaps.sort_by(|a, b| a.time().cmp(b.time()).then(a.id.cmp(&b.id)));
        st.ids = ids;
        st.generation += 1;
        // Made-up directories take this time, so the kernel drops the
        // listings it cached of them (the ones still shown are the same
        // inodes with new contents).
        *self.listing_time.write() = GoTime::now();
        let vtree = layout::build(&snaps, &self.opts.path_templates, &self.opts.time_template);
        let snaps = Arc::new(snaps);
        let mut children = self.materialize(&mut st, Ino::ROOT, &vtree, &snaps);
        if self.opts.history && !children.iter().any(|c| c.name == HISTORY) {
            let sources = Arc::new(HistSources {
                snaps: snaps.clone(),
                trees: snaps
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (i, s.snapshot.tree))
                    .collect(),
            });
            let identity = Identity::History(st.generation);
            let kind = Kind::History(sources);
            let ino = self.stable_ino(&mut st, Ino::ROOT, HISTORY.as_ref(), identity, &kind);
            children.push(Child {
                name: HISTORY.into(),
                ino,
                kind,
            });
        }
        self.root().set_children(children);
        Ok(())
    }

    fn materialize(
        &self,
        st: &mut ViewState,
        parent: Ino,
        dir: &VDir,
        snaps: &Arc<Vec<SnapInfo>>,
    ) -> Vec<Child> {
        let mut out = Vec::with_capacity(dir.len());
        for (name, vnode) in dir {
            let time = self.started;
            let (identity, kind) = match vnode {
                VNode::Dir(_) => (Identity::Dir, Kind::Virtual { time }),
                VNode::Snapshot(i) => match snaps.get(*i) {
                    Some(s) => (
                        Identity::Snapshot(s.id),
                        Kind::SnapshotRoot {
                            snap: Arc::new(s.clone()),
                        },
                    ),
                    None => continue,
                },
                VNode::Link(t) => (
                    Identity::Link(t.clone()),
                    Kind::Link {
                        target: t.clone(),
                        time,
                    },
                ),
            };
            let ino = self.stable_ino(st, parent, name, identity, &kind);
            if let VNode::Dir(sub) = vnode {
                let children = self.materialize(st, ino, sub, snaps);
                if let Some(e) = self.inodes.get(ino) {
                    e.set_children(children);
                }
            }
            out.push(Child {
                name: name.clone(),
                ino,
                kind,
            });
        }
        out
    }

    /// The inode of a made-up entry: the previous one if (parent, name)
    /// still means the same, else a new pinned one.
    fn stable_ino(
        &self,
        st: &mut ViewState,
        parent: Ino,
        name: &OsStr,
        identity: Identity,
        kind: &Kind,
    ) -> Ino {
        let key = (parent, name.to_os_string());
        if let Some((ino, id)) = st.names.get(&key) {
            if *id == identity {
                return *ino;
            }
        }
        let entry = Entry::new(parent, kind.clone());
        if matches!(entry.kind, Kind::Virtual { .. }) {
            entry.set_children(Vec::new());
        }
        let ino = self.inodes.alloc_pinned(entry);
        st.names.insert(key, (ino, identity));
        ino
    }
}
