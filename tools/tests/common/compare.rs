//! Walking and comparing trees: [`compare_trees`] lists every difference
//! between two trees as `lstat` and `getfattr` see them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// All entries below `root` (not `root` itself), relative, sorted; symlinks
/// are not followed.
pub fn walk(root: &Path) -> Vec<PathBuf> {
    fn rec(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) {
        let dir = root.join(rel);
        let mut names: Vec<_> = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
            .map(|e| e.expect("dir entry").file_name())
            .collect();
        names.sort();
        for name in names {
            let child = rel.join(&name);
            let meta = fs::symlink_metadata(root.join(&child)).expect("lstat");
            out.push(child.clone());
            if meta.file_type().is_dir() {
                rec(root, &child, out);
            }
        }
    }
    let mut out = Vec::new();
    rec(root, Path::new(""), &mut out);
    out
}

/// The kind of a file system entry, for messages.
pub fn kind(meta: &fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let ft = meta.file_type();
    if ft.is_dir() {
        "dir"
    } else if ft.is_file() {
        "file"
    } else if ft.is_symlink() {
        "symlink"
    } else if ft.is_fifo() {
        "fifo"
    } else if ft.is_char_device() {
        "chardev"
    } else if ft.is_block_device() {
        "blockdev"
    } else if ft.is_socket() {
        "socket"
    } else {
        "unknown"
    }
}

/// All extended attributes of `path` (not following symlinks), values in
/// hex, read with `getfattr`.
pub fn xattrs(path: &Path) -> BTreeMap<String, String> {
    let out = Command::new("getfattr")
        .args(["-h", "-d", "-m", "-", "-e", "hex", "--absolute-names", "--"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run getfattr (install the `attr` package): {e}"));
    assert!(
        out.status.success(),
        "getfattr {} failed: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect()
}

/// What [`compare_trees`] checks besides types, names, sizes and contents.
#[derive(Clone, Copy, Debug)]
pub struct CompareOpts {
    pub mode: bool,
    pub owner: bool,
    pub mtime: bool,
    /// Also compare the mtime of symlinks.
    pub symlink_mtime: bool,
    pub xattrs: bool,
    pub hardlinks: bool,
}

impl Default for CompareOpts {
    fn default() -> Self {
        CompareOpts {
            mode: true,
            owner: true,
            mtime: true,
            symlink_mtime: true,
            xattrs: true,
            hardlinks: true,
        }
    }
}

fn same_content(a: &Path, b: &Path) -> std::io::Result<bool> {
    let (mut fa, mut fb) = (File::open(a)?, File::open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    loop {
        let na = read_full(&mut fa, &mut ba)?;
        let nb = read_full(&mut fb, &mut bb)?;
        if na != nb || ba[..na] != bb[..nb] {
            return Ok(false);
        }
        if na == 0 {
            return Ok(true);
        }
    }
}

fn read_full(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Walk `a` and `b` (the roots included) with `lstat` and describe every
/// difference: missing entries, type, permission bits incl.
/// setuid/setgid/sticky, uid/gid, mtime to the nanosecond, size and
/// content, symlink target, xattrs, and hard-link groups. Empty means equal.
pub fn compare_trees(a: &Path, b: &Path, opts: CompareOpts) -> Vec<String> {
    let mut diffs = Vec::new();
    let list_a = walk(a);
    let list_b = walk(b);
    let set_b: BTreeSet<&PathBuf> = list_b.iter().collect();
    let set_a: BTreeSet<&PathBuf> = list_a.iter().collect();
    for p in &list_a {
        if !set_b.contains(p) {
            diffs.push(format!("{:?}: only in {}", p, a.display()));
        }
    }
    for p in &list_b {
        if !set_a.contains(p) {
            diffs.push(format!("{:?}: only in {}", p, b.display()));
        }
    }
    let mut common: Vec<PathBuf> = vec![PathBuf::new()];
    common.extend(list_a.iter().filter(|p| set_b.contains(p)).cloned());
    let mut links_a: HashMap<u64, Vec<PathBuf>> = HashMap::new();
    let mut links_b: HashMap<u64, Vec<PathBuf>> = HashMap::new();
    for rel in &common {
        let (pa, pb) = (a.join(rel), b.join(rel));
        let shown = if rel.as_os_str().is_empty() {
            "<root>".to_string()
        } else {
            format!("{rel:?}")
        };
        let ma = fs::symlink_metadata(&pa).expect("lstat a");
        let mb = fs::symlink_metadata(&pb).expect("lstat b");
        let diff = |diffs: &mut Vec<String>, what: &str, va: String, vb: String| {
            if va != vb {
                diffs.push(format!("{shown}: {what} differs: {va} vs {vb}"));
            }
        };
        diff(&mut diffs, "type", kind(&ma).into(), kind(&mb).into());
        if kind(&ma) != kind(&mb) {
            continue;
        }
        let is_link = ma.file_type().is_symlink();
        if opts.mode && !is_link {
            diff(
                &mut diffs,
                "mode",
                format!("{:o}", ma.mode() & 0o7777),
                format!("{:o}", mb.mode() & 0o7777),
            );
        }
        if opts.owner {
            diff(
                &mut diffs,
                "uid",
                ma.uid().to_string(),
                mb.uid().to_string(),
            );
            diff(
                &mut diffs,
                "gid",
                ma.gid().to_string(),
                mb.gid().to_string(),
            );
        }
        if opts.mtime && (!is_link || opts.symlink_mtime) {
            diff(
                &mut diffs,
                "mtime",
                format!("{}.{:09}", ma.mtime(), ma.mtime_nsec()),
                format!("{}.{:09}", mb.mtime(), mb.mtime_nsec()),
            );
        }
        if ma.file_type().is_file() {
            diff(
                &mut diffs,
                "size",
                ma.len().to_string(),
                mb.len().to_string(),
            );
            if ma.len() == mb.len() {
                match same_content(&pa, &pb) {
                    Ok(true) => {}
                    Ok(false) => diffs.push(format!("{shown}: content differs")),
                    Err(e) => diffs.push(format!("{shown}: cannot compare content: {e}")),
                }
            }
            if opts.hardlinks && ma.nlink() > 1 {
                links_a.entry(ma.ino()).or_default().push(rel.clone());
            }
            if opts.hardlinks && mb.nlink() > 1 {
                links_b.entry(mb.ino()).or_default().push(rel.clone());
            }
        }
        if is_link {
            diff(
                &mut diffs,
                "symlink target",
                format!("{:?}", fs::read_link(&pa).ok()),
                format!("{:?}", fs::read_link(&pb).ok()),
            );
        }
        if opts.xattrs && !is_link {
            diff(
                &mut diffs,
                "xattrs",
                format!("{:?}", xattrs(&pa)),
                format!("{:?}", xattrs(&pb)),
            );
        }
    }
    if opts.hardlinks {
        let groups = |m: HashMap<u64, Vec<PathBuf>>| -> BTreeSet<Vec<PathBuf>> {
            m.into_values()
                .filter(|g| g.len() > 1)
                .map(|mut g| {
                    g.sort();
                    g
                })
                .collect()
        };
        let (ga, gb) = (groups(links_a), groups(links_b));
        if ga != gb {
            diffs.push(format!("hard-link groups differ: {ga:?} vs {gb:?}"));
        }
    }
    diffs
}

/// Fail the test with every difference between the trees `a` and `b`.
#[track_caller]
pub fn assert_same_tree(a: &Path, b: &Path, opts: CompareOpts) {
    let diffs = compare_trees(a, b, opts);
    assert!(
        diffs.is_empty(),
        "{} and {} differ ({} differences):\n  {}",
        a.display(),
        b.display(),
        diffs.len(),
        diffs.join("\n  ")
    );
}
