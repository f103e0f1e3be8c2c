//! Snapshot files (`snapshots/<id>`): one backup's root tree and metadata.
//!
//! The JSON is restic's `Snapshot` struct, fields in restic's order:
//! `time`, `tree` and `paths` are always written; `parent`, `hostname`,
//! `username`, `uid`, `gid`, `excludes`, `tags`, `original`,
//! `program_version` and `summary` (restic 0.17+) only when non-empty.
//! Unknown fields are ignored and `null` reads as the zero value, as in Go.
//!
//! The snapshot's own id is the hash of the stored (encrypted) file, so it
//! is not part of the JSON. The filters here follow restic's `--host`,
//! `--tag` and `--path` semantics exactly.

use serde::{Deserialize, Serialize};

use super::gojson::{self, null_default};
use super::time::GoTime;
use crate::error::{Error, Result};
use crate::id::{SnapshotId, TreeId};

/// The decrypted (and decompressed) content of a snapshot file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// When the backup started.
    pub time: GoTime,
    /// The snapshot this one was based on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<SnapshotId>,
    /// The root tree.
    pub tree: TreeId,
    /// The backed-up paths, absolute.
    #[serde(default, deserialize_with = "null_default")]
    pub paths: Vec<String>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub hostname: String,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub username: String,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_zero"
    )]
    pub uid: u32,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_zero"
    )]
    pub gid: u32,
    /// Exclude patterns given to the backup.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub excludes: Vec<String>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tags: Vec<String>,
    /// For a snapshot rewritten or copied from another: the original's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original: Option<SnapshotId>,
    /// The writing program and version, e.g. `"restic 0.17.0"`.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub program_version: String,
    /// Backup statistics (restic 0.17+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<SnapshotSummary>,
}

/// Statistics of the backup that made a snapshot (restic's
/// `SnapshotSummary`; every field is always written).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SnapshotSummary {
    pub backup_start: GoTime,
    pub backup_end: GoTime,
    #[serde(deserialize_with = "null_default")]
    pub files_new: u64,
    #[serde(deserialize_with = "null_default")]
    pub files_changed: u64,
    #[serde(deserialize_with = "null_default")]
    pub files_unmodified: u64,
    #[serde(deserialize_with = "null_default")]
    pub dirs_new: u64,
    #[serde(deserialize_with = "null_default")]
    pub dirs_changed: u64,
    #[serde(deserialize_with = "null_default")]
    pub dirs_unmodified: u64,
    /// Go `int`.
    #[serde(deserialize_with = "null_default")]
    pub data_blobs: i64,
    /// Go `int`.
    #[serde(deserialize_with = "null_default")]
    pub tree_blobs: i64,
    #[serde(deserialize_with = "null_default")]
    pub data_added: u64,
    #[serde(deserialize_with = "null_default")]
    pub data_added_packed: u64,
    #[serde(deserialize_with = "null_default")]
    pub total_files_processed: u64,
    #[serde(deserialize_with = "null_default")]
    pub total_bytes_processed: u64,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

impl Snapshot {
    /// A snapshot of `tree` taken at `time`; other fields empty.
    pub fn new(time: GoTime, tree: TreeId, paths: Vec<String>) -> Self {
        Snapshot {
            time,
            tree,
            paths,
            ..Snapshot::default()
        }
    }

    /// The JSON restic writes (`json.Marshal`, no trailing newline).
    pub fn to_json(&self) -> Vec<u8> {
        gojson::to_vec(self)
    }

    /// Parse a decrypted (and decompressed) snapshot file.
    pub fn from_json(data: &[u8]) -> Result<Snapshot> {
        serde_json::from_slice(data).map_err(|e| Error::corrupt("snapshot", e))
    }

    /// True if the snapshot has every tag in `tags`. As in restic, the
    /// empty tag matches a snapshot without tags.
    pub fn has_tags<S: AsRef<str>>(&self, tags: &[S]) -> bool {
        tags.iter().all(|t| {
            let t = t.as_ref();
            (t.is_empty() && self.tags.is_empty()) || self.tags.iter().any(|have| have == t)
        })
    }

    /// restic's `--tag` filter: true if `lists` is empty or the snapshot
    /// has all tags of at least one list (`--tag a,b --tag c` is
    /// `[["a","b"],["c"]]`, meaning (a AND b) OR c).
    pub fn has_tag_list<S: AsRef<str>>(&self, lists: &[Vec<S>]) -> bool {
        lists.is_empty() || lists.iter().any(|l| self.has_tags(l))
    }

    /// restic's `--path` filter: true if every path in `paths` is one of
    /// the snapshot's paths (exact string comparison; callers make the
    /// paths absolute and clean first, as restic does).
    pub fn has_paths<S: AsRef<str>>(&self, paths: &[S]) -> bool {
        paths
            .iter()
            .all(|p| self.paths.iter().any(|have| have == p.as_ref()))
    }

    /// restic's `--host` filter: true if `hosts` is empty or contains the
    /// snapshot's host name.
    pub fn has_hostname<S: AsRef<str>>(&self, hosts: &[S]) -> bool {
        hosts.is_empty() || hosts.iter().any(|h| h.as_ref() == self.hostname)
    }

    /// All of restic's `--host`, `--tag` and `--path` filters at once.
    pub fn matches<S: AsRef<str>>(&self, hosts: &[S], tags: &[Vec<S>], paths: &[S]) -> bool {
        self.has_hostname(hosts) && self.has_tag_list(tags) && self.has_paths(paths)
    }

    /// Add tags not yet present, in order; true if anything changed.
    pub fn add_tags<S: AsRef<str>>(&mut self, tags: &[S]) -> bool {
        let before = self.tags.len();
        for t in tags {
            if !self.tags.iter().any(|have| have == t.as_ref()) {
                self.tags.push(t.as_ref().to_string());
            }
        }
        self.tags.len() != before
    }

    /// Remove the given tags; true if anything changed.
    pub fn remove_tags<S: AsRef<str>>(&mut self, tags: &[S]) -> bool {
        let before = self.tags.len();
        self.tags
            .retain(|have| !tags.iter().any(|t| t.as_ref() == have));
        self.tags.len() != before
    }
}

/// Split one `--tag` argument the way restic does: at commas, each tag
/// trimmed of surrounding white space (empty tags are kept: `--tag ""`
/// selects untagged snapshots).
pub fn parse_tag_list(arg: &str) -> Vec<String> {
    arg.split(',').map(|t| t.trim().to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Snapshot files written by restic 0.14.0 (decrypted, decompressed):
    /// with parent and tags; in a +01:00 zone with a host name Go escapes
    /// and excludes.
    const RESTIC_SNAPSHOTS: [&str; 3] = [
        r#"{"time":"2026-11-23T14:41:18.911822737Z","parent":"ab5765a5ce9414532f43ea9044181f2ceec752781623f5a36f82fa6002b6edb1","tree":"425fd6ad65452a0d61e1cd2f4002b0f75eff26152017a77e410cb2a0647e370c","paths":["/tmp/fmt/src"],"hostname":"vm","username":"root","tags":["a","b","c"]}"#,
        r#"{"time":"2026-11-23T15:41:34.89558001+01:00","tree":"c512929bb5c1449f07362d80a0a877c567703e25f1deb2ceaea3768f2ebb9685","paths":["/tmp/fmt/src"],"hostname":"h\u003c\u0026\u003e","username":"root","excludes":["*.tmp","x\"y"]}"#,
        r#"{"time":"2026-11-23T14:40:25.393204327Z","tree":"18613e846a4da61b3bf6ed05ca9a60166143fe8827d85d577617820380fb792d","paths":["/tmp/fmt/src"],"hostname":"vm","username":"root"}"#,
    ];

    /// A restic 0.17-style snapshot with uid/gid, original, program version
    /// and summary.
    const FULL: &str = r#"{"time":"2024-08-01T10:00:00.5+02:00","parent":"ab5765a5ce9414532f43ea9044181f2ceec752781623f5a36f82fa6002b6edb1","tree":"425fd6ad65452a0d61e1cd2f4002b0f75eff26152017a77e410cb2a0647e370c","paths":["/home/a","/etc"],"hostname":"box","username":"a","uid":1000,"gid":1000,"excludes":["*.o"],"tags":["t"],"original":"18613e846a4da61b3bf6ed05ca9a60166143fe8827d85d577617820380fb792d","program_version":"restic 0.17.0","summary":{"backup_start":"2024-08-01T10:00:00.5+02:00","backup_end":"2024-08-01T10:01:00+02:00","files_new":1,"files_changed":2,"files_unmodified":3,"dirs_new":4,"dirs_changed":5,"dirs_unmodified":6,"data_blobs":7,"tree_blobs":8,"data_added":9,"data_added_packed":10,"total_files_processed":11,"total_bytes_processed":12}}"#;

    #[test]
    fn restic_snapshots_round_trip_exactly() {
        for json in RESTIC_SNAPSHOTS.iter().chain([&FULL]) {
            let sn = Snapshot::from_json(json.as_bytes()).unwrap();
            assert_eq!(String::from_utf8(sn.to_json()).unwrap(), *json);
        }
        let sn = Snapshot::from_json(RESTIC_SNAPSHOTS[1].as_bytes()).unwrap();
        assert_eq!(sn.hostname, "h<&>");
        assert_eq!(sn.excludes, ["*.tmp", "x\"y"]);
        assert_eq!(sn.parent, None);
        let full = Snapshot::from_json(FULL.as_bytes()).unwrap();
        let summary = full.summary.as_ref().unwrap();
        assert_eq!((summary.files_new, summary.total_bytes_processed), (1, 12));
        assert_eq!(full.original.unwrap().short(), "18613e84");
    }

    #[test]
    fn minimal_and_odd_snapshots() {
        let tree = TreeId::from(crate::id::Id::hash(b"t"));
        let sn = Snapshot::new(GoTime::parse("2024-01-01T00:00:00Z").unwrap(), tree, vec![]);
        assert_eq!(
            String::from_utf8(sn.to_json()).unwrap(),
            format!(r#"{{"time":"2024-01-01T00:00:00Z","tree":"{tree}","paths":[]}}"#)
        );
        let odd = format!(
            r#"{{"time":"2024-01-01T00:00:00Z","tree":"{tree}","paths":null,"tags":null,"hostname":null,"new_field":{{"x":1}}}}"#
        );
        let back = Snapshot::from_json(odd.as_bytes()).unwrap();
        assert_eq!(back, sn);
    }

    #[test]
    fn malformed_snapshots_are_errors() {
        for json in [
            "",
            "[]",
            r#"{"time":"2024-01-01T00:00:00Z"}"#,
            r#"{"time":"2024-01-01T00:00:00Z","tree":null}"#,
            r#"{"time":"2024-01-01T00:00:00Z","tree":"abc"}"#,
            r#"{"time":"never","tree":"18613e846a4da61b3bf6ed05ca9a60166143fe8827d85d577617820380fb792d"}"#,
        ] {
            assert!(
                matches!(
                    Snapshot::from_json(json.as_bytes()),
                    Err(Error::Corrupt { .. })
                ),
                "{json:?}"
            );
        }
    }

    fn tagged(tags: &[&str]) -> Snapshot {
        Snapshot {
            tags: tags.iter().map(|t| t.to_string()).collect(),
            hostname: "h1".into(),
            paths: vec!["/a".into(), "/b".into()],
            ..Snapshot::default()
        }
    }

    #[test]
    fn tag_filters_follow_restic() {
        let sn = tagged(&["a", "b"]);
        assert!(sn.has_tags(&["a"]) && sn.has_tags(&["b", "a"]) && sn.has_tags::<&str>(&[]));
        assert!(!sn.has_tags(&["a", "c"]));
        assert!(
            !sn.has_tags(&[""]),
            "the empty tag selects untagged snapshots only"
        );
        assert!(tagged(&[]).has_tags(&[""]));
        // --tag a,c --tag b  ==  (a AND c) OR b
        let lists = vec![parse_tag_list("a, c"), parse_tag_list("b")];
        assert_eq!(lists[0], ["a", "c"]);
        assert!(sn.has_tag_list(&lists));
        assert!(!tagged(&["a"]).has_tag_list(&lists));
        assert!(tagged(&["a"]).has_tag_list::<String>(&[]));
        assert_eq!(parse_tag_list(""), [""]);
    }

    #[test]
    fn host_and_path_filters_follow_restic() {
        let sn = tagged(&[]);
        assert!(sn.has_hostname::<&str>(&[]) && sn.has_hostname(&["x", "h1"]));
        assert!(!sn.has_hostname(&["h2"]));
        assert!(sn.has_paths(&["/a"]) && sn.has_paths(&["/b", "/a"]));
        assert!(
            !sn.has_paths(&["/a", "/c"]),
            "all given paths must be present"
        );
        assert!(sn.matches(&["h1"], &[vec![""]], &["/a"]));
        assert!(!sn.matches(&["h1"], &[vec!["x"]], &["/a"]));
    }

    #[test]
    fn adding_and_removing_tags() {
        let mut sn = tagged(&["a"]);
        assert!(sn.add_tags(&["b", "a", "b"]));
        assert_eq!(sn.tags, ["a", "b"]);
        assert!(!sn.add_tags(&["a"]));
        assert!(sn.remove_tags(&["a", "zz"]));
        assert_eq!(sn.tags, ["b"]);
        assert!(!sn.remove_tags(&["a"]));
    }
}
