//! Real FUSE mounts of `cairn mount` (needs /dev/fuse and fusermount3; as
//! root on these machines). Where FUSE is missing the tests fail loudly,
//! unless `CAIRN_SKIP_FUSE=1` is set, which prints a SKIPPED line instead.
//!
//! Each test backs up the shared fixture (with restic, and with cairn),
//! mounts the repository in the background, and checks: the tree under
//! `snapshots/latest/` equals the source (names, types, sizes, modes,
//! owners, mtimes, symlink targets, xattrs, hard-link groups, contents),
//! random-offset reads match, `rsync -aH` from the mount reproduces the hard
//! links, writes are refused with EROFS, and `fusermount3 -u` ends the
//! process with status 0. Also: a snapshot made while mounted shows up
//! (the kernel caches directory listings), and inode numbers survive the
//! kernel forgetting its inodes.

mod common;

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn fuse_or_skip(test: &str) -> bool {
    let missing: Vec<&str> = [
        (!Path::new("/dev/fuse").exists()).then_some("/dev/fuse"),
        Command::new("fusermount3")
            .arg("-V")
            .output()
            .is_err()
            .then_some("fusermount3 (package fuse3)"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var("CAIRN_SKIP_FUSE").as_deref() == Ok("1") {
        eprintln!("SKIPPED {test}: FUSE unavailable (missing {missing:?}); CAIRN_SKIP_FUSE=1");
        return false;
    }
    panic!(
        "{test}: FUSE is unavailable (missing {missing:?}). Install fuse3 / provide /dev/fuse, \
         or set CAIRN_SKIP_FUSE=1 to skip the mount tests explicitly."
    );
}

fn is_mounted(mp: &Path) -> bool {
    let mp = mp.to_string_lossy().to_string();
    fs::read_to_string("/proc/self/mounts")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(1) == Some(mp.as_str()))
}

/// A running `cairn mount`; unmounts and reaps it on drop.
struct Mounted {
    child: Option<Child>,
    mp: PathBuf,
}

impl Mounted {
    fn start(repo: &Repo, mp: &Path, extra: &[&str]) -> Self {
        fs::create_dir_all(mp).unwrap();
        let mp = mp.canonicalize().unwrap();
        let mut args = vec!["mount"];
        args.extend_from_slice(extra);
        let mp_str = mp.to_str().unwrap().to_string();
        args.push(&mp_str);
        let child = command(Tool::Cairn, Some(repo), &args, &RunOpts::default())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cannot start cairn mount");
        let mut m = Mounted {
            child: Some(child),
            mp,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !is_mounted(&m.mp) {
            if let Some(status) = m.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("cairn mount exited early with {status}");
            }
            assert!(Instant::now() < deadline, "mount did not appear in 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        m
    }

    /// Unmount with fusermount3 and require a clean exit.
    fn unmount(mut self) {
        let st = Command::new("fusermount3")
            .arg("-u")
            .arg(&self.mp)
            .status()
            .unwrap();
        assert!(st.success(), "fusermount3 -u failed");
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "cairn mount exited with {status}");
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("cairn mount did not exit after unmount");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(!is_mounted(&self.mp));
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("fusermount3")
                .args(["-u", "-z"])
                .arg(&self.mp)
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn random_reads(a: &Path, b: &Path) {
    let len = fs::metadata(a).unwrap().len();
    let (mut fa, mut fb) = (fs::File::open(a).unwrap(), fs::File::open(b).unwrap());
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..200 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let off = seed % len.max(1);
        let n = (seed >> 40) as usize % (3 << 20);
        let (mut x, mut y) = (vec![0u8; n], vec![0u8; n]);
        fa.seek(SeekFrom::Start(off)).unwrap();
        fb.seek(SeekFrom::Start(off)).unwrap();
        let ka = read_up_to(&mut fa, &mut x);
        let kb = read_up_to(&mut fb, &mut y);
        assert_eq!((ka, &x[..ka]), (kb, &y[..kb]), "offset {off} length {n}");
    }
}

fn read_up_to(f: &mut fs::File, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]).unwrap() {
            0 => break,
            k => n += k,
        }
    }
    n
}

fn check_mount(tool: Tool, version: u32) {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("fixture");
    build_fixture(&src, 5 << 20);
    let repo = Repo::new(tmp.path().join("repo"));
    init(tool, &repo, version, None);
    backup(tool, &repo, &src, &[]);

    let m = Mounted::start(&repo, &tmp.path().join("mnt"), &[]);
    let top: Vec<String> = fs::read_dir(&m.mp)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for want in ["snapshots", "ids", "hosts", "tags", "history"] {
        assert!(top.contains(&want.to_string()), "{want} missing in {top:?}");
    }
    let mounted = m.mp.join("snapshots/latest/fixture");
    assert_same_tree(&src, &mounted, CompareOpts::default());
    random_reads(&src.join(BIG_FILE), &mounted.join(BIG_FILE));

    // rsync -aH from the mount recreates the hard links.
    let copy = tmp.path().join("copy");
    let st = Command::new("rsync")
        .args(["-aHX", "--numeric-ids"])
        .arg(format!("{}/", mounted.display()))
        .arg(&copy)
        .status()
        .expect("rsync is needed (apt-get install rsync)");
    assert!(st.success(), "rsync failed");
    assert_same_tree(&src, &copy, CompareOpts::default());

    // Writes are refused.
    let err = fs::write(mounted.join("new-file"), b"x").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{err}");
    let err = fs::remove_file(mounted.join("empty")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{err}");

    m.unmount();
}

#[test]
fn mount_restic_v1_repository() {
    if !fuse_or_skip("mount_restic_v1_repository") || !restic_or_skip("mount_restic_v1") {
        return;
    }
    check_mount(Tool::Restic, 1);
}

#[test]
fn mount_restic_v2_repository() {
    if !fuse_or_skip("mount_restic_v2_repository") || !restic_or_skip("mount_restic_v2") {
        return;
    }
    check_mount(Tool::Restic, 2);
}

#[test]
fn mount_cairn_repository() {
    if !fuse_or_skip("mount_cairn_repository") {
        return;
    }
    check_mount(Tool::Cairn, 2);
}

#[test]
fn mountpoint_errors_are_clear() {
    if !fuse_or_skip("mountpoint_errors_are_clear") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let repo = Repo::new(tmp.path().join("repo"));
    init(Tool::Cairn, &repo, 2, None);
    let missing = tmp.path().join("nope");
    let run = cairn(&repo, &["mount", missing.to_str().unwrap()]);
    assert!(!run.success());
    assert!(run.stderr.contains("does not exist"), "{}", run.describe());
    let inside = repo.path.join("data");
    let run = cairn(&repo, &["mount", inside.to_str().unwrap()]);
    assert!(!run.success());
    assert!(run.stderr.contains("repository"), "{}", run.describe());
}

/// Every path under `root` with its inode number (not following symlinks).
fn inode_map(root: &Path) -> Vec<(PathBuf, u64)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let path = e.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                todo.push(path.clone());
            }
            out.push((path.strip_prefix(root).unwrap().to_path_buf(), meta.ino()));
        }
    }
    out.sort();
    out
}

#[test]
fn inode_numbers_survive_kernel_forgets() {
    if !fuse_or_skip("inode_numbers_survive_kernel_forgets") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("fixture");
    build_fixture(&src, 1 << 20);
    let repo = Repo::new(tmp.path().join("repo"));
    init(Tool::Cairn, &repo, 2, None);
    backup(Tool::Cairn, &repo, &src, &[]);
    let m = Mounted::start(&repo, &tmp.path().join("mnt"), &[]);
    let mounted = m.mp.join("snapshots/latest/fixture");
    let history = m.mp.join("history/fixture");
    let before = (inode_map(&mounted), inode_map(&history));
    assert!(before.0.len() > 10, "{:?}", before.0);
    // Make the kernel drop its dentries and inodes: it sends `forget`s and
    // cairn drops the entries; looked up again, they keep their numbers.
    if fs::write("/proc/sys/vm/drop_caches", "2").is_err() {
        eprintln!("inode_numbers_survive_kernel_forgets: cannot drop caches (not root?); checking without");
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!((inode_map(&mounted), inode_map(&history)), before);
    assert_same_tree(&src, &mounted, CompareOpts::default());
    m.unmount();
}

#[test]
fn new_snapshots_show_up_in_a_live_mount() {
    if !fuse_or_skip("new_snapshots_show_up_in_a_live_mount") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("fixture");
    build_fixture(&src, 1 << 16);
    let repo = Repo::new(tmp.path().join("repo"));
    init(Tool::Cairn, &repo, 2, None);
    backup(Tool::Cairn, &repo, &src, &[]);
    let m = Mounted::start(&repo, &tmp.path().join("mnt"), &[]);
    let list = |dir: &str| -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(m.mp.join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    // Listed twice: the second listing may come from the kernel's cache.
    for _ in 0..2 {
        assert_eq!(list("snapshots").len(), 2, "{:?}", list("snapshots"));
        assert_eq!(list("ids").len(), 1, "{:?}", list("ids"));
    }
    backup(Tool::Cairn, &repo, &src, &[]);
    // The list is reloaded at most every 5 s; cached listings must not
    // hide the new snapshot for much longer than that.
    let deadline = Instant::now() + Duration::from_secs(30);
    while list("snapshots").len() < 3 || list("ids").len() < 2 {
        assert!(
            Instant::now() < deadline,
            "new snapshot not shown: {:?} {:?}",
            list("snapshots"),
            list("ids")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    m.unmount();
}
