//! Lock files (`locks/<id>`): who holds a lock on the repository, since
//! when, and whether exclusively.
//!
//! The JSON is restic's `Lock` struct: `time`, `exclusive`, `hostname`,
//! `username` and `pid` always, `uid`/`gid` only when non-zero. In a v2
//! repository the file is compressed like every other unpacked file except
//! the config. How locks are taken, refreshed and judged stale is the
//! repository's business; this module only holds the data.

use serde::{Deserialize, Serialize};

use super::gojson::{self, null_default};
use super::time::GoTime;
use crate::error::{Error, Result};

/// The decrypted content of a lock file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockFile {
    /// When the lock was created or last refreshed.
    pub time: GoTime,
    /// True for an exclusive lock (prune, check, …).
    #[serde(default, deserialize_with = "null_default")]
    pub exclusive: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub hostname: String,
    #[serde(default, deserialize_with = "null_default")]
    pub username: String,
    /// Process id of the holder (Go `int`).
    #[serde(default, deserialize_with = "null_default")]
    pub pid: i64,
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
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

impl LockFile {
    /// The JSON restic writes (`json.Marshal`, no trailing newline).
    pub fn to_json(&self) -> Vec<u8> {
        gojson::to_vec(self)
    }

    /// Parse a decrypted (and decompressed) lock file.
    pub fn from_json(data: &[u8]) -> Result<LockFile> {
        serde_json::from_slice(data).map_err(|e| Error::corrupt("lock file", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lock written by restic 0.14.0 during `backup` (run as root, so no
    /// uid/gid).
    const RESTIC_LOCK: &str = r#"{"time":"2026-11-23T14:42:00.792862265Z","exclusive":false,"hostname":"vm","username":"root","pid":8768}"#;

    #[test]
    fn restic_lock_round_trips_exactly() {
        let lock = LockFile::from_json(RESTIC_LOCK.as_bytes()).unwrap();
        assert_eq!(lock.pid, 8768);
        assert!(!lock.exclusive);
        assert_eq!((lock.uid, lock.gid), (0, 0));
        assert_eq!(lock.time.to_string(), "2026-11-23T14:42:00.792862265Z");
        assert_eq!(lock.to_json(), RESTIC_LOCK.as_bytes());
    }

    #[test]
    fn uid_and_gid_are_written_when_set() {
        let lock = LockFile {
            time: GoTime::parse("2024-01-02T03:04:05+01:00").unwrap(),
            exclusive: true,
            hostname: "host".into(),
            username: "alice".into(),
            pid: 42,
            uid: 1000,
            gid: 100,
        };
        let json = String::from_utf8(lock.to_json()).unwrap();
        assert_eq!(
            json,
            r#"{"time":"2024-01-02T03:04:05+01:00","exclusive":true,"hostname":"host","username":"alice","pid":42,"uid":1000,"gid":100}"#
        );
        assert_eq!(LockFile::from_json(json.as_bytes()).unwrap(), lock);
    }

    #[test]
    fn tolerant_and_strict_where_it_matters() {
        let lock =
            LockFile::from_json(br#"{"time":"2024-01-02T03:04:05Z","hostname":null,"extra":1}"#)
                .unwrap();
        assert_eq!(lock.hostname, "");
        assert!(LockFile::from_json(b"").is_err());
        assert!(LockFile::from_json(br#"{"time":"yesterday"}"#).is_err());
        assert!(LockFile::from_json(br#"{"time":"2024-01-02T03:04:05Z","pid":"1"}"#).is_err());
    }
}
