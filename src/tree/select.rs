//! Choosing snapshots the way restic's commands do: by id or unique id
//! prefix, by `latest`, and filtered by `--host`, `--tag` and `--path`.

use crate::backend::FileType;
use crate::error::{Error, Result};
use crate::format::snapshot::Snapshot;
use crate::id::SnapshotId;
use crate::repository::Repository;

/// restic's snapshot filter. An empty list matches everything.
#[derive(Clone, Debug, Default)]
pub struct SnapshotFilter {
    /// Any of these hosts.
    pub hosts: Vec<String>,
    /// Any of these tag lists; each list matches if the snapshot has all of
    /// its tags (restic: `--tag a,b --tag c` means (a AND b) OR c).
    pub tags: Vec<Vec<String>>,
    /// The snapshot's paths must equal this set (restic: all given paths
    /// must be among the snapshot's paths).
    pub paths: Vec<String>,
}

impl SnapshotFilter {
    /// True if the snapshot passes the filter.
    pub fn matches(&self, sn: &Snapshot) -> bool {
        sn.matches(&self.hosts, &self.tags, &self.paths)
    }
}

/// All snapshots passing `filter`, oldest first.
pub fn filter_snapshots(
    repo: &Repository,
    filter: &SnapshotFilter,
) -> Result<Vec<(SnapshotId, Snapshot)>> {
    Ok(repo
        .list_snapshots()?
        .into_iter()
        .filter(|(_, sn)| filter.matches(sn))
        .collect())
}

/// Resolve `latest` (newest snapshot passing the filter), a full id, or a
/// unique id prefix. Accepts restic's `snapshot:subfolder` form and returns
/// the subfolder separately.
pub fn find_snapshot(
    repo: &Repository,
    spec: &str,
    filter: &SnapshotFilter,
) -> Result<(SnapshotId, Snapshot, Option<String>)> {
    let (name, sub) = match spec.split_once(':') {
        Some((n, s)) => (n, Some(s.to_string())),
        None => (spec, None),
    };
    if name == "latest" {
        let (id, sn) = filter_snapshots(repo, filter)?
            .pop()
            .ok_or_else(|| Error::SnapshotSelect("no snapshot found".into()))?;
        return Ok((id, sn, sub));
    }
    let id = match repo.find_id(FileType::Snapshot, name) {
        Ok(id) => SnapshotId(id),
        Err(Error::NotFound(_)) => {
            return Err(Error::SnapshotSelect(format!(
                "no matching ID found for prefix {name:?}"
            )))
        }
        Err(e) => return Err(e),
    };
    let sn = repo.load_snapshot(&id)?;
    Ok((id, sn, sub))
}

/// The snapshots a command works on: those named by `specs` (ids, prefixes,
/// `latest`), or, when none are named, every snapshot passing `filter` —
/// restic's rule for `tag`, `rewrite`, `repair snapshots` and the like.
pub fn select_snapshots(
    repo: &Repository,
    specs: &[String],
    filter: &SnapshotFilter,
) -> Result<Vec<(SnapshotId, Snapshot)>> {
    if specs.is_empty() {
        return filter_snapshots(repo, filter);
    }
    specs
        .iter()
        .map(|spec| find_snapshot(repo, spec, filter).map(|(id, sn, _)| (id, sn)))
        .collect()
}
