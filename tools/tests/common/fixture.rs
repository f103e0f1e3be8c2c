//! Fixture trees: deterministic directory trees with every kind of entry a
//! backup tool must round-trip (empty, small and multi-chunk files,
//! symlinks incl. dangling ones, hard links across directories, a fifo,
//! xattrs, odd names, deep directories, setuid/setgid/sticky modes, foreign
//! owners, distinct nanosecond mtimes).

use std::fs::{self, File, FileTimes};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use super::compare::walk;

/// A small deterministic PRNG (SplitMix64) for file contents.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        v.truncate(n);
        v
    }
}

/// Size of the multi-chunk file: several Rabin (avg 1 MiB) and FastCDC
/// chunks, more than one 8 MiB-ish chunker maximum.
pub const BIG_FILE_SIZE: usize = 12 << 20;
/// Relative path of the multi-chunk file inside a fixture.
pub const BIG_FILE: &str = "big.bin";

fn write_file(path: &Path, data: &[u8]) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap_or_else(|e| panic!("mkdir {}: {e}", parent.display()));
    }
    fs::write(path, data).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

fn mkdir(path: &Path) {
    fs::create_dir_all(path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
}

fn symlink(target: &str, link: &Path) {
    std::os::unix::fs::symlink(target, link)
        .unwrap_or_else(|e| panic!("symlink {}: {e}", link.display()));
}

pub fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// Run an external helper program; panic with its output on failure.
#[track_caller]
pub fn sh(program: &str, args: &[&std::ffi::OsStr]) {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} (is it installed?): {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn setfattr(path: &Path, name: &str, value: &str) {
    sh(
        "setfattr",
        &[
            "-h".as_ref(),
            "-n".as_ref(),
            name.as_ref(),
            "-v".as_ref(),
            value.as_ref(),
            "--".as_ref(),
            path.as_os_str(),
        ],
    );
}

/// Set mtime (and atime) of `path` without following symlinks, with
/// nanosecond precision.
pub fn set_mtime(path: &Path, secs: u64, nanos: u32) {
    let meta =
        fs::symlink_metadata(path).unwrap_or_else(|e| panic!("lstat {}: {e}", path.display()));
    let ft = meta.file_type();
    let time = SystemTime::UNIX_EPOCH + Duration::new(secs, nanos);
    if ft.is_file() || ft.is_dir() {
        let f = File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        f.set_times(FileTimes::new().set_modified(time).set_accessed(time))
            .unwrap_or_else(|e| panic!("set times {}: {e}", path.display()));
    } else {
        // Symlinks and fifos: `touch -h` uses utimensat(AT_SYMLINK_NOFOLLOW)
        // and never opens the file (opening a fifo would block).
        let stamp = format!("@{secs}.{nanos:09}");
        sh(
            "touch",
            &[
                "-h".as_ref(),
                "-d".as_ref(),
                stamp.as_ref(),
                "--".as_ref(),
                path.as_os_str(),
            ],
        );
    }
}

/// A 255-byte file name (the Linux maximum).
pub fn long_name() -> String {
    let mut s = "long-".to_string();
    while s.len() < 251 {
        s.push((b'a' + (s.len() % 26) as u8) as char);
    }
    s.push_str(".txt");
    assert_eq!(s.len(), 255);
    s
}

/// Names that stress encoders: spaces, unicode, a newline, quotes and
/// backslashes, a leading dash, and the longest name Linux allows.
pub fn odd_names() -> Vec<String> {
    vec![
        "with space.txt".into(),
        "ünïcödé-文件-😀.txt".into(),
        "new\nline".into(),
        "tab\there".into(),
        "quote\"back\\slash'$(x)".into(),
        "-leading-dash".into(),
        ".hidden".into(),
        long_name(),
    ]
}

/// Depth of the `deep/` chain.
pub const DEEP_LEVELS: usize = 30;

/// Write the full interop fixture at `root` (which must not exist). The
/// multi-chunk file `big.bin` has `big_size` random bytes.
pub fn build_fixture(root: &Path, big_size: usize) {
    assert!(!root.exists(), "{} exists already", root.display());
    let mut rng = Rng::new(0x00c0_ffee);
    mkdir(root);

    // Regular files.
    write_file(&root.join("empty"), b"");
    write_file(&root.join("small/one-byte"), b"a");
    write_file(&root.join("small/hello.txt"), b"hello world\n");
    write_file(&root.join("small/4k.bin"), &rng.bytes(4096));
    write_file(&root.join("small/100k.bin"), &rng.bytes(100_000));
    write_file(&root.join("zeros.bin"), &vec![0u8; 2 << 20]);
    write_file(&root.join(BIG_FILE), &rng.bytes(big_size));

    // Symlinks: relative, absolute, to a directory, dangling.
    mkdir(&root.join("links"));
    symlink("../small/hello.txt", &root.join("links/to-hello"));
    symlink("/etc/hostname", &root.join("links/absolute"));
    symlink("../small", &root.join("links/to-dir"));
    symlink("does/not/exist", &root.join("links/dangling"));

    // Hard links across directories (three names, one inode).
    write_file(
        &root.join("hardlinks/a/original"),
        b"one inode, three names\n",
    );
    mkdir(&root.join("hardlinks/b"));
    fs::hard_link(
        root.join("hardlinks/a/original"),
        root.join("hardlinks/b/second"),
    )
    .expect("hard link");
    fs::hard_link(
        root.join("hardlinks/a/original"),
        root.join("hardlink-third"),
    )
    .expect("hard link");

    // A fifo.
    mkdir(&root.join("special"));
    sh(
        "mkfifo",
        &["--".as_ref(), root.join("special/fifo").as_os_str()],
    );

    // Extended attributes on a file and a directory.
    let x = root.join("xattrs");
    write_file(&x.join("file.txt"), b"has xattrs\n");
    setfattr(&x.join("file.txt"), "user.comment", "hello xattr");
    setfattr(&x.join("file.txt"), "user.binary", "0x00ff10fe");
    setfattr(&x.join("file.txt"), "user.empty", "");
    setfattr(&x, "user.dir-attr", "on a directory");

    // Odd names.
    for (i, name) in odd_names().iter().enumerate() {
        write_file(
            &root.join("names").join(name),
            format!("odd name {i}\n").as_bytes(),
        );
    }

    // A deep chain of directories.
    let mut deep = root.join("deep");
    for level in 1..=DEEP_LEVELS {
        deep.push(format!("d{level:02}"));
    }
    write_file(&deep.join("leaf.txt"), b"at the bottom\n");

    // Owners other than root (numeric ids without a passwd entry), then
    // special modes (chown clears setuid, so modes come second).
    let m = root.join("modes");
    write_file(&m.join("setuid"), b"#!/bin/sh\n");
    write_file(&m.join("setgid"), b"#!/bin/sh\n");
    write_file(&m.join("readonly"), b"read only\n");
    write_file(&m.join("exec"), b"#!/bin/sh\n");
    write_file(&m.join("foreign-owner"), b"owned by 1001:1002\n");
    mkdir(&m.join("sticky-dir"));
    mkdir(&m.join("setgid-dir"));
    mkdir(&m.join("private-dir"));
    std::os::unix::fs::chown(m.join("foreign-owner"), Some(1001), Some(1002)).expect("chown");
    std::os::unix::fs::chown(m.join("setuid"), Some(1001), Some(1002)).expect("chown");
    std::os::unix::fs::chown(m.join("private-dir"), Some(4242), Some(4343)).expect("chown");
    std::os::unix::fs::lchown(root.join("links/dangling"), Some(1001), Some(1002)).expect("lchown");
    chmod(&m.join("setuid"), 0o4755);
    chmod(&m.join("setgid"), 0o2755);
    chmod(&m.join("readonly"), 0o444);
    chmod(&m.join("exec"), 0o755);
    chmod(&m.join("foreign-owner"), 0o640);
    chmod(&m.join("sticky-dir"), 0o1777);
    chmod(&m.join("setgid-dir"), 0o2775);
    chmod(&m.join("private-dir"), 0o700);

    set_all_mtimes(root);
}

/// A small fixture for the bad-input tests: a few files (one of 1 MiB so
/// that packs hold real data), a symlink, a subdirectory.
pub fn build_small_fixture(root: &Path) {
    assert!(!root.exists(), "{} exists already", root.display());
    let mut rng = Rng::new(7);
    write_file(&root.join("a.txt"), b"alpha\n");
    write_file(&root.join("sub/b.bin"), &rng.bytes(1 << 20));
    write_file(&root.join("sub/c.bin"), &rng.bytes(70_000));
    symlink("a.txt", &root.join("link"));
    set_all_mtimes(root);
}

/// Give every entry under `root` (and `root`) a distinct mtime with a
/// nanosecond part that is not a multiple of 1000 (so microsecond
/// truncation shows). Deepest entries first, so that setting a child's time
/// cannot disturb its parent's.
fn set_all_mtimes(root: &Path) {
    let mut paths = walk(root);
    paths.push(PathBuf::new());
    paths.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for (i, rel) in paths.iter().enumerate() {
        let i = i as u64;
        let secs = 1_500_000_000 + i * 86_461;
        let nanos = ((i * 123_456_789 + 987_654_321) % 1_000_000_000) as u32 | 1;
        set_mtime(&root.join(rel), secs, nanos);
    }
}
