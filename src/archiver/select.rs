//! Which items a backup leaves out, with restic's semantics.
//!
//! Two kinds of rules, checked in restic's order for every item below a
//! target (and for targets themselves), never for the intermediate
//! directories above them:
//! - by absolute path, before `lstat`: exclude patterns (`--exclude`,
//!   `--iexclude` and their `-file` forms) and tag files
//!   (`--exclude-if-present name[:header]`, `--exclude-caches`): an item is
//!   left out when the directory holding it contains the tag file (with the
//!   header, if given); the tag file itself and the directory stay;
//! - by metadata, after `lstat`: `--exclude-larger-than` (anything but
//!   directories) and `--one-file-system` (items on another device than the
//!   target they belong to; directories that are mount points are kept,
//!   empty).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::Metadata;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use super::path::lossy;
use crate::error::{Error, Result};
use crate::filter::PatternSet;

/// The tag file and signature of `--exclude-caches`.
pub const CACHEDIR_TAG: &str = "CACHEDIR.TAG:Signature: 8a477f597d28d172789f06886806bc55";

/// Exclusion rules of a backup.
#[derive(Clone, Debug, Default)]
pub struct ExcludeOptions {
    /// Exclude patterns (all of `--exclude`, `--iexclude` and the pattern
    /// files, combined).
    pub patterns: PatternSet,
    /// `--exclude-if-present` specs: `filename` or `filename:header`.
    pub if_present: Vec<String>,
    /// `--exclude-caches`: directories tagged with `CACHEDIR.TAG`.
    pub caches: bool,
    /// `--exclude-larger-than`, in bytes.
    pub larger_than: Option<u64>,
    /// `--one-file-system`.
    pub one_file_system: bool,
}

/// A tag file rule: its name and the header its content must start with.
#[derive(Debug)]
struct TagFile {
    name: String,
    header: Vec<u8>,
}

/// The compiled rules.
pub struct Selector {
    patterns: PatternSet,
    tags: Vec<TagFile>,
    /// Per (tag rule, directory): whether the directory is tagged.
    tagged: Mutex<HashMap<(usize, PathBuf), bool>>,
    larger_than: Option<u64>,
    /// Target path → its device, for `--one-file-system`.
    devices: Option<HashMap<PathBuf, u64>>,
}

impl Selector {
    /// Compile `opts` for the given absolute, cleaned targets (whose
    /// devices `--one-file-system` needs).
    pub fn new(opts: &ExcludeOptions, targets: &[PathBuf]) -> Result<Selector> {
        let mut specs = opts.if_present.clone();
        if opts.caches {
            specs.push(CACHEDIR_TAG.to_string());
        }
        let tags = specs
            .iter()
            .map(|spec| parse_tag_spec(spec))
            .collect::<Result<Vec<_>>>()?;
        let devices = if opts.one_file_system {
            let mut map = HashMap::new();
            for target in targets {
                let meta = std::fs::symlink_metadata(target)
                    .map_err(|e| Error::io(format!("lstat {}", target.display()), e))?;
                map.insert(target.clone(), meta.dev());
            }
            Some(map)
        } else {
            None
        };
        Ok(Selector {
            patterns: opts.patterns.clone(),
            tags,
            tagged: Mutex::new(HashMap::new()),
            larger_than: opts.larger_than,
            devices,
        })
    }

    /// True if the item at the absolute `path` is excluded by its path.
    /// Problems with tag files are reported to `warn` and do not exclude.
    pub fn excluded_by_name(&self, path: &Path, warn: &dyn Fn(String)) -> bool {
        if !self.patterns.is_empty() && self.patterns.matches(&lossy(path)) {
            return true;
        }
        let (Some(dir), Some(base)) = (path.parent(), path.file_name()) else {
            return false;
        };
        (0..self.tags.len()).any(|i| self.in_tagged_dir(i, dir, base, warn))
    }

    fn in_tagged_dir(&self, rule: usize, dir: &Path, base: &OsStr, warn: &dyn Fn(String)) -> bool {
        let tag = &self.tags[rule];
        if base == OsStr::new(&tag.name) {
            return false;
        }
        let key = (rule, dir.to_path_buf());
        if let Some(&tagged) = self.tagged.lock().get(&key) {
            return tagged;
        }
        let tagged = dir_is_tagged(dir, tag, warn);
        self.tagged.lock().insert(key, tagged);
        tagged
    }

    /// True if the item at the absolute `path` is excluded by its
    /// metadata (size or device).
    pub fn excluded_by_info(&self, path: &Path, meta: &Metadata) -> bool {
        if let Some(max) = self.larger_than {
            if !meta.is_dir() && meta.size() > max {
                return true;
            }
        }
        if let Some(devices) = &self.devices {
            if !device_allowed(devices, path, meta.dev()) {
                if !meta.is_dir() {
                    return true;
                }
                // Keep mount points: directories whose parent is allowed.
                let parent_allowed = path.parent().is_some_and(|parent| {
                    std::fs::symlink_metadata(parent)
                        .is_ok_and(|pm| device_allowed(devices, parent, pm.dev()))
                });
                return !parent_allowed;
            }
        }
        false
    }
}

/// restic's `DeviceMap.IsAllowed`: the closest target at or above `path`
/// decides; outside every target everything is allowed.
fn device_allowed(devices: &HashMap<PathBuf, u64>, path: &Path, dev: u64) -> bool {
    match path.ancestors().find_map(|dir| devices.get(dir)) {
        Some(&allowed) => allowed == dev,
        None => true,
    }
}

/// Parse `filename[:header]`.
fn parse_tag_spec(spec: &str) -> Result<TagFile> {
    let (name, header) = match spec.split_once(':') {
        Some((name, header)) => (name, header),
        None => (spec, ""),
    };
    if name.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "--exclude-if-present {spec:?}: no name for exclusion tagfile provided"
        )));
    }
    Ok(TagFile {
        name: name.to_string(),
        header: header.as_bytes().to_vec(),
    })
}

/// Whether `dir` holds the tag file with the right header.
fn dir_is_tagged(dir: &Path, tag: &TagFile, warn: &dyn Fn(String)) -> bool {
    let path = dir.join(&tag.name);
    match std::fs::symlink_metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return false,
        Err(e) => {
            warn(format!("could not access exclusion tagfile: {e}"));
            return false;
        }
        Ok(_) if tag.header.is_empty() => return true,
        Ok(_) => {}
    }
    let mut buf = vec![0u8; tag.header.len()];
    let read = std::fs::File::open(&path).and_then(|mut f| f.read_exact(&mut buf));
    match read {
        Ok(()) if buf == tag.header => true,
        Ok(()) => {
            warn(format!(
                "invalid signature in exclusion tagfile {:?}",
                path.display()
            ));
            false
        }
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            warn(format!(
                "invalid (too short) signature in exclusion tagfile {:?}",
                path.display()
            ));
            false
        }
        Err(e) => {
            warn(format!(
                "could not read signature from exclusion tagfile {:?}: {e}",
                path.display()
            ));
            false
        }
    }
}

/// Parse a size like restic's `--exclude-larger-than`: a number with an
/// optional suffix `b`, `k`, `m`, `g` or `t` (either case, powers of 1024).
pub fn parse_size(s: &str) -> Result<u64> {
    let bad = || Error::InvalidArgument(format!("invalid size {s:?}"));
    let (digits, unit) = match s.as_bytes().last() {
        None => return Err(bad()),
        Some(b'b' | b'B') => (&s[..s.len() - 1], 1u64),
        Some(b'k' | b'K') => (&s[..s.len() - 1], 1 << 10),
        Some(b'm' | b'M') => (&s[..s.len() - 1], 1 << 20),
        Some(b'g' | b'G') => (&s[..s.len() - 1], 1 << 30),
        Some(b't' | b'T') => (&s[..s.len() - 1], 1 << 40),
        Some(_) => (s, 1),
    };
    let value: u64 = digits.parse().map_err(|_| bad())?;
    value.checked_mul(unit).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[test]
    fn sizes_parse_like_restic() {
        assert_eq!(parse_size("100").unwrap(), 100);
        assert_eq!(parse_size("2k").unwrap(), 2048);
        assert_eq!(parse_size("3M").unwrap(), 3 << 20);
        assert_eq!(parse_size("1T").unwrap(), 1 << 40);
        assert_eq!(parse_size("7b").unwrap(), 7);
        for bad in ["", "k", "-1", "1.5M", "99999999999999999999T", "1x"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn tag_files_exclude_directory_contents_only() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let fake = dir.path().join("fake");
        std::fs::create_dir(&cache).unwrap();
        std::fs::create_dir(&fake).unwrap();
        std::fs::write(
            cache.join("CACHEDIR.TAG"),
            b"Signature: 8a477f597d28d172789f06886806bc55\n# x",
        )
        .unwrap();
        std::fs::write(fake.join("CACHEDIR.TAG"), b"Signature: nope").unwrap();
        std::fs::create_dir(dir.path().join("plain")).unwrap();
        std::fs::write(dir.path().join("plain/.nobackup"), b"").unwrap();
        let opts = ExcludeOptions {
            caches: true,
            if_present: vec![".nobackup".into()],
            ..ExcludeOptions::default()
        };
        let sel = Selector::new(&opts, &[]).unwrap();
        let warnings = RefCell::new(Vec::new());
        let warn = |m: String| warnings.borrow_mut().push(m);
        assert!(sel.excluded_by_name(&cache.join("data"), &warn));
        assert!(!sel.excluded_by_name(&cache.join("CACHEDIR.TAG"), &warn));
        assert!(!sel.excluded_by_name(&cache, &warn));
        assert!(!sel.excluded_by_name(&fake.join("data"), &warn));
        assert!(sel.excluded_by_name(&dir.path().join("plain/x"), &warn));
        assert_eq!(warnings.borrow().len(), 1, "{:?}", warnings.borrow());
        assert!(Selector::new(
            &ExcludeOptions {
                if_present: vec![":x".into()],
                ..ExcludeOptions::default()
            },
            &[]
        )
        .is_err());
    }

    #[test]
    fn patterns_and_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        std::fs::write(&big, vec![0u8; 2000]).unwrap();
        let opts = ExcludeOptions {
            patterns: PatternSet::new(&["*.tmp".to_string()], false).unwrap(),
            larger_than: Some(1000),
            one_file_system: true,
            ..ExcludeOptions::default()
        };
        let sel = Selector::new(&opts, &[dir.path().to_path_buf()]).unwrap();
        let warn = |_: String| {};
        assert!(sel.excluded_by_name(&dir.path().join("a.tmp"), &warn));
        assert!(!sel.excluded_by_name(&big, &warn));
        assert!(sel.excluded_by_info(&big, &std::fs::metadata(&big).unwrap()));
        let here = std::fs::metadata(dir.path()).unwrap();
        assert!(!sel.excluded_by_info(dir.path(), &here));
        // /proc is another file system than the temp dir (if mounted).
        if let Ok(proc_meta) = std::fs::metadata("/proc/self") {
            if proc_meta.dev() != here.dev() {
                let fake_child = dir.path().join("x");
                assert!(
                    sel.excluded_by_info(&fake_child, &std::fs::metadata("/proc/version").unwrap())
                );
                // A directory on another device whose parent is allowed is a
                // mount point and stays.
                assert!(!sel.excluded_by_info(&fake_child, &proc_meta));
            }
        }
    }
}
