//! [`MemBackend`]: a repository held in memory, for tests and examples.
//!
//! It keeps the same contract as the on-disk backends (see [`crate::backend`])
//! and accepts exactly the same names (validated by [`layout`]), so code
//! tested against it behaves the same on a [`LocalBackend`]. A write is
//! atomic because the file is inserted whole under one lock.
//!
//! The `conformance` test suite in this file is the specification every
//! backend is tested against.
//!
//! [`LocalBackend`]: crate::backend::local::LocalBackend

use std::collections::BTreeMap;

use parking_lot::RwLock;

use crate::backend::{describe, layout, Backend, FileInfo, FileType};
use crate::error::{Error, Result};

/// A thread-safe in-memory backend. Cheap to create; contents vanish with it.
#[derive(Debug, Default)]
pub struct MemBackend {
    /// Files by type and canonical name (`"config"` for the config).
    files: RwLock<BTreeMap<(FileType, String), Vec<u8>>>,
}

impl MemBackend {
    /// An empty backend.
    pub fn new() -> Self {
        Self::default()
    }

    /// Validate the name and build the map key.
    fn key(tpe: FileType, name: &str) -> Result<(FileType, String)> {
        Ok((tpe, layout::canonical_name(tpe, name)?.to_string()))
    }
}

impl Backend for MemBackend {
    fn location(&self) -> String {
        "memory".to_string()
    }

    fn create(&self) -> Result<()> {
        let config = Self::key(FileType::Config, layout::CONFIG_NAME)?;
        if self.files.read().contains_key(&config) {
            return Err(Error::AlreadyExists("config".to_string()));
        }
        Ok(())
    }

    fn list(&self, tpe: FileType) -> Result<Vec<FileInfo>> {
        Ok(self
            .files
            .read()
            .iter()
            .filter(|((t, _), _)| *t == tpe)
            .map(|((_, name), data)| FileInfo {
                name: name.clone(),
                size: data.len() as u64,
            })
            .collect())
    }

    fn read(&self, tpe: FileType, name: &str) -> Result<Vec<u8>> {
        let key = Self::key(tpe, name)?;
        self.files
            .read()
            .get(&key)
            .cloned()
            .ok_or_else(|| Error::NotFound(describe(tpe, name)))
    }

    fn read_range(&self, tpe: FileType, name: &str, offset: u64, length: u64) -> Result<Vec<u8>> {
        let key = Self::key(tpe, name)?;
        let files = self.files.read();
        let data = files
            .get(&key)
            .ok_or_else(|| Error::NotFound(describe(tpe, name)))?;
        let range = offset
            .checked_add(length)
            .filter(|&end| end <= data.len() as u64)
            .and_then(|end| Some(usize::try_from(offset).ok()?..usize::try_from(end).ok()?));
        match range {
            Some(range) => Ok(data[range].to_vec()),
            None => Err(Error::corrupt(
                describe(tpe, name),
                format!(
                    "cannot read {length} bytes at offset {offset}: file has {} bytes",
                    data.len()
                ),
            )),
        }
    }

    fn write(&self, tpe: FileType, name: &str, data: &[u8]) -> Result<()> {
        let key = Self::key(tpe, name)?;
        let mut files = self.files.write();
        if tpe != FileType::Lock && files.contains_key(&key) {
            return Err(Error::AlreadyExists(describe(tpe, name)));
        }
        files.insert(key, data.to_vec());
        Ok(())
    }

    fn remove(&self, tpe: FileType, name: &str) -> Result<()> {
        let key = Self::key(tpe, name)?;
        match self.files.write().remove(&key) {
            Some(_) => Ok(()),
            None => Err(Error::NotFound(describe(tpe, name))),
        }
    }

    fn stat(&self, tpe: FileType, name: &str) -> Result<u64> {
        let key = Self::key(tpe, name)?;
        self.files
            .read()
            .get(&key)
            .map(|data| data.len() as u64)
            .ok_or_else(|| Error::NotFound(describe(tpe, name)))
    }
}

/// The behaviour every [`Backend`] must show, written once and run against
/// each implementation (as restic's `internal/backend/test` suite).
#[cfg(test)]
pub(crate) mod conformance {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use crate::backend::{Backend, FileType};
    use crate::error::Error;
    use crate::id::Id;

    /// A valid file name derived from `seed`.
    pub fn name(seed: &str) -> String {
        Id::hash(seed.as_bytes()).to_hex()
    }

    /// Names every backend must reject for every non-config type.
    pub fn invalid_names() -> Vec<String> {
        let id = name("invalid");
        vec![
            String::new(),
            "abc".to_string(),
            "../x".to_string(),
            "..".to_string(),
            format!("../{}", &id[3..]),
            format!("../../{}", &id[6..]),
            format!("/{}", &id[1..]),
            id.to_ascii_uppercase(),
            id[1..].to_string(),
            format!("{id}0"),
            format!("{id}-tmp-1234"),
            "config".to_string(),
        ]
    }

    /// Uploads (on a created backend): invisible until finished, then
    /// exactly the bytes written; an existing name is refused; a dropped
    /// upload leaves nothing.
    pub fn uploads(be: Arc<dyn Backend>) {
        let before = sorted_listing(&*be, FileType::Pack);
        let mut upload = Arc::clone(&be).upload(FileType::Pack).unwrap();
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
        for part in [&b"head "[..], &big, b"", b"tail"] {
            upload.write(part).unwrap();
        }
        let mut want = b"head ".to_vec();
        want.extend_from_slice(&big);
        want.extend_from_slice(b"tail");
        assert_eq!(upload.len(), want.len() as u64);
        assert_eq!(sorted_listing(&*be, FileType::Pack), before, "unfinished");
        let packed = name("uploaded");
        upload.finish(&packed).unwrap();
        assert!(be.read(FileType::Pack, &packed).unwrap() == want);

        let mut again = Arc::clone(&be).upload(FileType::Pack).unwrap();
        again.write(b"other").unwrap();
        assert!(matches!(
            again.finish(&packed),
            Err(Error::AlreadyExists(_))
        ));
        assert!(be.read(FileType::Pack, &packed).unwrap() == want);

        let mut dropped = Arc::clone(&be).upload(FileType::Pack).unwrap();
        dropped.write(b"never stored").unwrap();
        drop(dropped);
        let index = Arc::clone(&be).upload(FileType::Index).unwrap();
        let indexed = name("empty upload");
        index.finish(&indexed).unwrap();
        assert_eq!(be.read(FileType::Index, &indexed).unwrap(), b"");
        let mut after = before;
        after.push((packed, want.len() as u64));
        after.sort();
        assert_eq!(sorted_listing(&*be, FileType::Pack), after);
    }

    fn sorted_listing(be: &dyn Backend, tpe: FileType) -> Vec<(String, u64)> {
        let mut v: Vec<_> = be
            .list(tpe)
            .unwrap()
            .into_iter()
            .map(|f| (f.name, f.size))
            .collect();
        v.sort();
        v
    }

    /// Run the whole suite on a backend whose `create` has not been called.
    pub fn run(be: &dyn Backend) {
        assert!(!be.location().is_empty());
        be.create().unwrap();
        for tpe in FileType::ALL {
            assert!(be.list(tpe).unwrap().is_empty(), "{tpe:?} starts empty");
        }
        config(be);
        files_of_every_type(be);
        ranges(be);
        immutability(be);
        removal(be);
        invalid(be);
        concurrent_writers(be);
    }

    fn config(be: &dyn Backend) {
        assert!(!be.exists(FileType::Config, "config").unwrap());
        assert!(matches!(
            be.read(FileType::Config, "config"),
            Err(Error::NotFound(_))
        ));
        be.write(FileType::Config, "config", b"cfg").unwrap();
        assert_eq!(be.read(FileType::Config, "config").unwrap(), b"cfg");
        assert_eq!(
            be.read(FileType::Config, "").unwrap(),
            b"cfg",
            "\"\" is the config too"
        );
        assert_eq!(be.stat(FileType::Config, "config").unwrap(), 3);
        assert!(be.exists(FileType::Config, "config").unwrap());
        assert!(matches!(
            be.write(FileType::Config, "config", b"other"),
            Err(Error::AlreadyExists(_))
        ));
        assert_eq!(be.read(FileType::Config, "config").unwrap(), b"cfg");
        assert!(matches!(be.create(), Err(Error::AlreadyExists(_))));
        assert_eq!(
            sorted_listing(be, FileType::Config),
            vec![("config".to_string(), 3)]
        );
    }

    fn files_of_every_type(be: &dyn Backend) {
        let mut expected: BTreeMap<FileType, Vec<(String, u64)>> = BTreeMap::new();
        for tpe in FileType::ALL.into_iter().filter(|&t| t != FileType::Config) {
            for i in 0..5 {
                let n = name(&format!("{tpe:?}-{i}"));
                let data = vec![i as u8; i * 100];
                be.write(tpe, &n, &data).unwrap();
                assert_eq!(be.read(tpe, &n).unwrap(), data);
                assert_eq!(be.stat(tpe, &n).unwrap(), data.len() as u64);
                assert!(be.exists(tpe, &n).unwrap());
                expected
                    .entry(tpe)
                    .or_default()
                    .push((n, data.len() as u64));
            }
        }
        for (tpe, mut files) in expected {
            files.sort();
            assert_eq!(sorted_listing(be, tpe), files, "{tpe:?}");
            // A name of one type is not visible as another.
            let other = if tpe == FileType::Key {
                FileType::Index
            } else {
                FileType::Key
            };
            assert!(!be.exists(other, &files[1].0).unwrap());
        }
    }

    fn ranges(be: &dyn Backend) {
        let n = name("ranges");
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        be.write(FileType::Pack, &n, &data).unwrap();
        let r = |off, len| be.read_range(FileType::Pack, &n, off, len);
        assert_eq!(r(0, 1000).unwrap(), data);
        assert_eq!(r(10, 20).unwrap(), &data[10..30]);
        assert_eq!(r(990, 10).unwrap(), &data[990..]);
        assert_eq!(r(1000, 0).unwrap(), Vec::<u8>::new());
        assert_eq!(r(5, 0).unwrap(), Vec::<u8>::new());
        for (off, len) in [
            (991, 10),
            (0, 1001),
            (1001, 0),
            (u64::MAX, 1),
            (1, u64::MAX),
        ] {
            let err = r(off, len).unwrap_err();
            assert!(!matches!(err, Error::NotFound(_)), "({off}, {len}): {err}");
            assert!(err.to_string().contains(&n), "error names the file: {err}");
        }
        assert!(matches!(
            be.read_range(FileType::Pack, &name("missing"), 0, 1),
            Err(Error::NotFound(_))
        ));
    }

    fn immutability(be: &dyn Backend) {
        for tpe in [
            FileType::Pack,
            FileType::Snapshot,
            FileType::Index,
            FileType::Key,
        ] {
            let n = name(&format!("immutable-{tpe:?}"));
            be.write(tpe, &n, b"first").unwrap();
            let err = be.write(tpe, &n, b"second").unwrap_err();
            assert!(matches!(err, Error::AlreadyExists(_)), "{err}");
            assert_eq!(be.read(tpe, &n).unwrap(), b"first");
            assert_eq!(
                be.list(tpe).unwrap().iter().filter(|f| f.name == n).count(),
                1
            );
        }
        // Lock files may be replaced.
        let n = name("lock");
        be.write(FileType::Lock, &n, b"old").unwrap();
        be.write(FileType::Lock, &n, b"newer").unwrap();
        assert_eq!(be.read(FileType::Lock, &n).unwrap(), b"newer");
        // An empty file is a file.
        let e = name("empty");
        be.write(FileType::Snapshot, &e, b"").unwrap();
        assert_eq!(be.read(FileType::Snapshot, &e).unwrap(), b"");
        assert_eq!(be.stat(FileType::Snapshot, &e).unwrap(), 0);
    }

    fn removal(be: &dyn Backend) {
        let n = name("removed");
        be.write(FileType::Pack, &n, b"data").unwrap();
        be.remove(FileType::Pack, &n).unwrap();
        assert!(!be.exists(FileType::Pack, &n).unwrap());
        assert!(matches!(
            be.read(FileType::Pack, &n),
            Err(Error::NotFound(_))
        ));
        assert!(matches!(
            be.stat(FileType::Pack, &n),
            Err(Error::NotFound(_))
        ));
        assert!(matches!(
            be.remove(FileType::Pack, &n),
            Err(Error::NotFound(_))
        ));
        assert!(!be.list(FileType::Pack).unwrap().iter().any(|f| f.name == n));
        let err = be.read(FileType::Pack, &n).unwrap_err();
        assert!(err.to_string().contains(&n), "error names the file: {err}");
        // A removed name can be written again.
        be.write(FileType::Pack, &n, b"again").unwrap();
        assert_eq!(be.read(FileType::Pack, &n).unwrap(), b"again");
    }

    fn invalid(be: &dyn Backend) {
        let is_invalid = |r: Result<(), Error>, what: &str| match r {
            Err(Error::InvalidArgument(_)) => {}
            other => panic!("{what}: expected InvalidArgument, got {other:?}"),
        };
        for tpe in FileType::ALL.into_iter().filter(|&t| t != FileType::Config) {
            for n in invalid_names() {
                let what = format!("{tpe:?} {n:?}");
                is_invalid(be.write(tpe, &n, b"x"), &what);
                is_invalid(be.read(tpe, &n).map(drop), &what);
                is_invalid(be.read_range(tpe, &n, 0, 1).map(drop), &what);
                is_invalid(be.stat(tpe, &n).map(drop), &what);
                is_invalid(be.exists(tpe, &n).map(drop), &what);
                is_invalid(be.remove(tpe, &n), &what);
            }
        }
        for n in ["../config", "x", "CONFIG", &name("config")] {
            is_invalid(be.write(FileType::Config, n, b"x"), n);
            is_invalid(be.read(FileType::Config, n).map(drop), n);
        }
    }

    fn concurrent_writers(be: &dyn Backend) {
        const THREADS: usize = 16;
        const PER_THREAD: usize = 8;
        let before = be.list(FileType::Pack).unwrap().len();
        let content = |t: usize, i: usize| -> Vec<u8> {
            let len = 1 + (t * 7919 + i * 104_729) % 300_000;
            (0..len).map(|j| (j * 31 + t + i) as u8).collect()
        };
        std::thread::scope(|s| {
            for t in 0..THREADS {
                s.spawn(move || {
                    for i in 0..PER_THREAD {
                        let n = name(&format!("concurrent-{t}-{i}"));
                        be.write(FileType::Pack, &n, &content(t, i)).unwrap();
                    }
                });
            }
        });
        assert_eq!(
            be.list(FileType::Pack).unwrap().len(),
            before + THREADS * PER_THREAD
        );
        for t in 0..THREADS {
            for i in 0..PER_THREAD {
                let n = name(&format!("concurrent-{t}-{i}"));
                assert_eq!(be.read(FileType::Pack, &n).unwrap(), content(t, i));
            }
        }
        // Racing writers of one name: exactly one wins, the file is whole.
        let n = name("contended");
        let data = vec![7u8; 100_000];
        let wins: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| be.write(FileType::Pack, &n, &data)))
                .collect();
            handles
                .into_iter()
                .map(|h| match h.join().unwrap() {
                    Ok(()) => 1,
                    Err(Error::AlreadyExists(_)) => 0,
                    Err(e) => panic!("unexpected error {e}"),
                })
                .sum()
        });
        assert_eq!(wins, 1);
        assert_eq!(be.read(FileType::Pack, &n).unwrap(), data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conformance() {
        conformance::run(&MemBackend::new());
        let be = std::sync::Arc::new(MemBackend::new());
        be.create().unwrap();
        conformance::uploads(be);
    }

    #[test]
    fn default_is_empty_and_shared_between_threads() {
        let be = MemBackend::default();
        assert!(be.list(FileType::Pack).unwrap().is_empty());
        fn assert_send_sync<T: Send + Sync>(_: &T) {}
        assert_send_sync(&be);
    }
}
