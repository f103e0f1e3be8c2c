//! The made-up top of the mount: which snapshot appears under which path.
//!
//! restic's layout, built from path templates (`ids/%i`, `snapshots/%T`,
//! `hosts/%h/%T`, `tags/%t/%T`) and a Go time template: `%i`/`%I` short/long
//! id, `%u` user, `%h` host, `%t` one directory per tag, `%T` the formatted
//! time. A template ending in `%T` puts snapshots with equal times under
//! distinct names (`-1`, `-2`, …) and gets a `latest` symlink to the newest.
//!
//! [`build`] is a pure function from a sorted snapshot list to a [`VDir`]
//! tree; turning it into inodes (with stable numbers across reloads) is the
//! read layer's job. Every path component is checked with
//! [`cairn_core::tree::check_name`]: a hostname or tag that would make `..`,
//! an empty name or a NUL is skipped with a warning, and `/` in tags becomes
//! `_` (restic does the same for multi-tag snapshots).

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};

use cairn_core::format::snapshot::Snapshot;
use cairn_core::format::time::GoTime;
use cairn_core::tree::check_name;
use cairn_core::SnapshotId;

use crate::timefmt;

/// restic's default path templates.
pub const DEFAULT_PATH_TEMPLATES: [&str; 4] =
    ["ids/%i", "snapshots/%T", "hosts/%h/%T", "tags/%t/%T"];

/// Name of the `latest` symlinks.
pub const LATEST: &str = "latest";

/// One snapshot shown by the mount.
#[derive(Debug, Clone)]
pub struct SnapInfo {
    pub id: SnapshotId,
    pub snapshot: Snapshot,
}

impl SnapInfo {
    /// The snapshot's time.
    pub fn time(&self) -> &GoTime {
        &self.snapshot.time
    }
}

/// A made-up directory: names to entries, sorted.
pub type VDir = BTreeMap<OsString, VNode>;

/// One entry of the made-up tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VNode {
    /// An intermediate directory.
    Dir(VDir),
    /// The root directory of snapshot number `n` of the list given to [`build`].
    Snapshot(usize),
    /// A symlink (`latest`) with this target.
    Link(OsString),
}

/// Lay out `snaps` (oldest first) according to the templates.
pub fn build(snaps: &[SnapInfo], path_templates: &[String], time_template: &str) -> VDir {
    let mut root = VDir::new();
    for template in path_templates {
        if let Some(prefix) = static_prefix(template) {
            if let Some(comps) = components(&prefix) {
                insert(&mut root, &comps, VNode::Dir(VDir::new()));
            }
        }
    }
    // Per template and directory: the time of the snapshot `latest` names.
    let mut latest: HashMap<(usize, String), GoTime> = HashMap::new();
    for (idx, info) in snaps.iter().enumerate() {
        let time = timefmt::format(info.time().as_datetime(), time_template);
        for (t, template) in path_templates.iter().enumerate() {
            let (paths, suffix) = expand(template, &time, info);
            for prefix in paths {
                let Some(mut dir) = components(&prefix) else {
                    log::warn!(
                        "mount: snapshot {}: unusable path {prefix:?}",
                        info.id.short()
                    );
                    continue;
                };
                let with_suffix = |name: &str| {
                    let mut c = dir.clone();
                    c.extend(components(name).unwrap_or_default());
                    c
                };
                if !suffix.is_empty() && components(&suffix).is_none() {
                    log::warn!(
                        "mount: snapshot {}: unusable time name {suffix:?}",
                        info.id.short()
                    );
                    continue;
                }
                let mut name = suffix.clone();
                let mut n = 0;
                while exists(&root, &with_suffix(&name)) {
                    n += 1;
                    name = format!("{suffix}-{n}");
                }
                let target = with_suffix(&name);
                if target.is_empty() || !insert(&mut root, &target, VNode::Snapshot(idx)) {
                    log::warn!(
                        "mount: snapshot {}: cannot place it at {prefix:?}",
                        info.id.short()
                    );
                    continue;
                }
                if !suffix.is_empty() {
                    let key = (t, prefix.clone());
                    let newer = latest.get(&key).is_none_or(|lt| info.time() >= lt);
                    if newer {
                        dir.push(LATEST.to_string());
                        insert(&mut root, &dir, VNode::Link(OsString::from(&name)));
                        latest.insert(key, *info.time());
                    }
                }
            }
        }
    }
    root
}

/// Expand one template for one snapshot: the directory paths (several for
/// `%t` with several tags, none for `%t` without tags) and the time suffix
/// if the template ends in `%T`.
fn expand(template: &str, time: &str, info: &SnapInfo) -> (Vec<String>, String) {
    let sn = &info.snapshot;
    let mut outs = vec![String::new()];
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            outs.iter_mut().for_each(|o| o.push(c));
            continue;
        }
        let Some(verb) = chars.next() else {
            outs.iter_mut().for_each(|o| o.push('%'));
            break;
        };
        let repl = match verb {
            'T' if chars.peek().is_none() => return (outs, time.to_string()),
            'T' => time.to_string(),
            'i' => info.id.short(),
            'I' => info.id.to_hex(),
            'u' => sn.username.clone(),
            'h' => sn.hostname.clone(),
            't' => {
                if sn.tags.is_empty() {
                    return (Vec::new(), String::new());
                }
                outs = sn
                    .tags
                    .iter()
                    .flat_map(|tag| {
                        let tag = filename_from_tag(tag);
                        outs.iter().map(move |o| format!("{o}{tag}"))
                    })
                    .collect();
                continue;
            }
            other => other.to_string(),
        };
        outs.iter_mut().for_each(|o| o.push_str(&repl));
    }
    (outs, String::new())
}

/// A tag as a file name: `/` becomes `_`, and the empty tag, `.` and `..`
/// become underscores, as in restic.
fn filename_from_tag(tag: &str) -> String {
    match tag {
        "" | "." => "_".to_string(),
        ".." => "__".to_string(),
        t => t.replace('/', "_"),
    }
}

/// The directories a template always creates (the part before the first
/// verb, up to its last `/`), e.g. `tags` for `tags/%t/%T`.
fn static_prefix(template: &str) -> Option<String> {
    let mut in_verb = false;
    for (i, c) in template.char_indices() {
        if in_verb {
            in_verb = false;
            if "iIuhtT".contains(c) {
                let head = &template[..i - 1];
                return head.rfind('/').map(|slash| head[..slash].to_string());
            }
        } else if c == '%' {
            in_verb = true;
        }
    }
    None
}

/// Split a path into usable components, skipping empty ones and `.`;
/// `None` if a component is unusable (`..`, NUL).
fn components(path: &str) -> Option<Vec<String>> {
    let comps: Vec<String> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_string)
        .collect();
    comps
        .iter()
        .all(|c| check_name(OsStr::new(c)).is_ok())
        .then_some(comps)
}

fn exists(root: &VDir, path: &[String]) -> bool {
    let Some((last, dirs)) = path.split_last() else {
        return true;
    };
    let mut dir = root;
    for comp in dirs {
        match dir.get(OsStr::new(comp)) {
            Some(VNode::Dir(d)) => dir = d,
            Some(_) => return true,
            None => return false,
        }
    }
    dir.contains_key(OsStr::new(last))
}

/// Insert `node` at `path`, creating directories. An existing directory
/// stays (inserting a directory there is a no-op); a non-directory in the
/// way refuses the insert. Links replace links.
fn insert(root: &mut VDir, path: &[String], node: VNode) -> bool {
    let Some((last, dirs)) = path.split_last() else {
        return false;
    };
    let mut dir = root;
    for comp in dirs {
        let entry = dir
            .entry(OsString::from(comp))
            .or_insert_with(|| VNode::Dir(VDir::new()));
        match entry {
            VNode::Dir(d) => dir = d,
            _ => return false,
        }
    }
    let key = OsString::from(last);
    match (dir.get(&key), &node) {
        (None, _) | (Some(VNode::Link(_)), VNode::Link(_)) => {
            dir.insert(key, node);
            true
        }
        (Some(VNode::Dir(_)), VNode::Dir(_)) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_core::{Id, TreeId};

    fn snap(n: u8, time: &str, host: &str, tags: &[&str]) -> SnapInfo {
        let mut sn = Snapshot::new(
            GoTime::parse(time).unwrap(),
            TreeId(Id::hash(&[n])),
            vec!["/x".into()],
        );
        sn.hostname = host.into();
        sn.tags = tags.iter().map(|t| t.to_string()).collect();
        SnapInfo {
            id: SnapshotId(Id::hash(&[n, n])),
            snapshot: sn,
        }
    }

    fn templates() -> Vec<String> {
        DEFAULT_PATH_TEMPLATES
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    fn dir<'a>(root: &'a VDir, path: &str) -> &'a VDir {
        let mut d = root;
        for c in path.split('/').filter(|c| !c.is_empty()) {
            match d.get(OsStr::new(c)) {
                Some(VNode::Dir(x)) => d = x,
                other => panic!("{path}: {c} is {other:?}"),
            }
        }
        d
    }

    fn names(d: &VDir) -> Vec<String> {
        d.keys().map(|k| k.to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn restic_layout_with_equal_times_and_latest() {
        let snaps = vec![
            snap(1, "2024-01-01T10:00:00+01:00", "alpha", &["daily", "a/b"]),
            snap(2, "2024-01-01T10:00:00+01:00", "alpha", &[]),
            snap(3, "2024-02-01T10:00:00Z", "beta", &["daily"]),
        ];
        let root = build(&snaps, &templates(), timefmt::RFC3339);
        assert_eq!(names(&root), ["hosts", "ids", "snapshots", "tags"]);
        let s = dir(&root, "snapshots");
        assert_eq!(
            names(s),
            [
                "2024-01-01T10:00:00+01:00",
                "2024-01-01T10:00:00+01:00-1",
                "2024-02-01T10:00:00Z",
                "latest"
            ]
        );
        assert_eq!(
            s[OsStr::new("2024-01-01T10:00:00+01:00-1")],
            VNode::Snapshot(1)
        );
        assert_eq!(
            s[OsStr::new("latest")],
            VNode::Link("2024-02-01T10:00:00Z".into())
        );
        let alpha = dir(&root, "hosts/alpha");
        assert_eq!(
            alpha[OsStr::new("latest")],
            VNode::Link("2024-01-01T10:00:00+01:00-1".into()),
            "equal times: the later in list order is latest"
        );
        assert_eq!(names(dir(&root, "tags")), ["a_b", "daily"]);
        assert_eq!(names(dir(&root, "tags/daily")).len(), 3);
        let ids = dir(&root, "ids");
        assert_eq!(ids[OsStr::new(&snaps[2].id.short())], VNode::Snapshot(2));
    }

    #[test]
    fn hostile_hosts_and_custom_templates() {
        let snaps = vec![
            snap(1, "2024-01-01T10:00:00Z", "..", &[]),
            snap(2, "2024-01-01T11:00:00Z", "", &[]),
            snap(3, "2024-01-01T12:00:00Z", "ok", &[]),
        ];
        let tpl = vec!["hosts/%h/%T".to_string(), "by-id/%I".to_string()];
        let root = build(&snaps, &tpl, "2006-01-02_15-04");
        assert_eq!(
            names(dir(&root, "hosts")),
            ["2024-01-01_11-00", "latest", "ok"]
        );
        assert_eq!(
            names(dir(&root, "hosts/ok")),
            ["2024-01-01_12-00", "latest"]
        );
        assert_eq!(names(dir(&root, "by-id")).len(), 3);
        // Empty tag set: no tags dir content, but the static prefix exists.
        let root = build(&snaps, &templates(), timefmt::RFC3339);
        assert!(dir(&root, "tags").is_empty());
    }
}
