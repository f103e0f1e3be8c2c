//! Metadata round trips: modes with setuid/setgid/sticky, times with
//! nanoseconds (directories' set after their contents), symlinks, fifos,
//! device nodes, extended attributes, ownership.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use crate::format::time::GoTime;
use crate::format::tree::{go_mode_from_unix, ExtendedAttribute, Node, NodeType};

use super::*;

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Whether `dir`'s file system takes `user.*` extended attributes.
fn xattrs_supported(dir: &Path) -> bool {
    let probe = dir.join(".xattr-probe");
    std::fs::write(&probe, b"").unwrap();
    let ok = xattr::set(&probe, "user.probe", b"1").is_ok();
    std::fs::remove_file(probe).unwrap();
    ok
}

fn times(node: &mut Node, secs: i64, nanos: u32) {
    node.mtime = GoTime::from_unix_utc(secs, nanos);
    node.atime = GoTime::from_unix_utc(secs - 1000, nanos / 2);
}

fn lstat(path: &Path) -> std::fs::Metadata {
    std::fs::symlink_metadata(path).unwrap()
}

fn assert_times(path: &Path, secs: i64, nanos: u32) {
    let m = lstat(path);
    assert_eq!(
        (m.mtime(), m.mtime_nsec()),
        (secs, i64::from(nanos)),
        "{path:?} mtime"
    );
    assert_eq!(
        (m.atime(), m.atime_nsec()),
        (secs - 1000, i64::from(nanos / 2)),
        "{path:?} atime"
    );
}

#[test]
fn modes_times_links_and_special_files_round_trip() {
    let (_, repo) = repo();
    let tmp = tempfile::tempdir().unwrap();
    let with_xattrs = xattrs_supported(tmp.path());

    let mut setuid = file(&repo, "setuid", &[b"#!/bin/sh\n"]);
    setuid.mode = go_mode_from_unix(0o104_755);
    times(&mut setuid, 1_234_567_890, 123_456_789);
    if with_xattrs {
        setuid.extended_attributes = vec![ExtendedAttribute {
            name: "user.comment".into(),
            value: b"\x00binary\xff".to_vec(),
        }];
    }
    let mut setgid = file(&repo, "setgid", &[b"x"]);
    setgid.mode = go_mode_from_unix(0o102_750);
    times(&mut setgid, 1_000_000_000, 1);

    let mut link = Node::new("link", NodeType::Symlink);
    link.link_target = "setuid".into();
    link.mode = go_mode_from_unix(0o120_777);
    times(&mut link, 1_111_111_111, 999_999_999);

    let mut fifo = Node::new("fifo", NodeType::Fifo);
    fifo.mode = go_mode_from_unix(0o010_640);
    times(&mut fifo, 1_222_222_222, 5);

    let mut readonly = file(&repo, "readonly", &[b"ro"]);
    readonly.mode = go_mode_from_unix(0o100_400);
    times(&mut readonly, 1_300_000_000, 7);

    // A read-only directory: its content must be written before its mode.
    let mut locked = dir(&repo, "locked", vec![readonly]);
    locked.mode = go_mode_from_unix(0o040_555);
    times(&mut locked, 1_400_000_000, 300);

    let mut sticky = dir(&repo, "sticky", vec![setuid, setgid, link, fifo, locked]);
    sticky.mode = go_mode_from_unix(0o041_777);
    times(&mut sticky, 1_500_000_000, 400_000_000);

    let root = root(&repo, vec![sticky]);
    let (_, stats, problems) = run(&repo, &root, &Selection::All, tmp.path());
    assert!(problems.is_empty(), "{problems:?}");
    assert!(stats.is_complete());

    let d = tmp.path().join("sticky");
    let mode = |p: &str| lstat(&d.join(p)).mode();
    assert_eq!(lstat(&d).mode(), 0o041_777);
    assert_eq!(mode("setuid"), 0o104_755);
    assert_eq!(mode("setgid"), 0o102_750);
    assert_eq!(mode("locked"), 0o040_555);
    assert_eq!(mode("locked/readonly"), 0o100_400);
    assert!(lstat(&d.join("fifo")).file_type().is_fifo());
    assert_eq!(mode("fifo") & 0o7777, 0o640);

    assert_times(&d, 1_500_000_000, 400_000_000);
    assert_times(&d.join("setuid"), 1_234_567_890, 123_456_789);
    assert_times(&d.join("setgid"), 1_000_000_000, 1);
    assert_times(&d.join("link"), 1_111_111_111, 999_999_999);
    assert_times(&d.join("fifo"), 1_222_222_222, 5);
    assert_times(&d.join("locked"), 1_400_000_000, 300);
    assert_times(&d.join("locked/readonly"), 1_300_000_000, 7);
    // Reading a link updates its atime, so only after checking times.
    assert_eq!(
        std::fs::read_link(d.join("link")).unwrap(),
        Path::new("setuid")
    );
    if with_xattrs {
        assert_eq!(
            xattr::get(d.join("setuid"), "user.comment")
                .unwrap()
                .unwrap(),
            b"\x00binary\xff"
        );
    }
    // Make the tempdir removable again.
    nix::sys::stat::fchmodat(
        None,
        &d.join("locked"),
        nix::sys::stat::Mode::S_IRWXU,
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )
    .unwrap();
}

#[test]
fn ownership_and_device_nodes_as_root() {
    if !is_root() {
        return;
    }
    let (_, repo) = repo();
    let mut owned = file(&repo, "owned", &[b"data"]);
    owned.uid = 1234;
    owned.gid = 5678;
    owned.mode = go_mode_from_unix(0o106_755);
    let mut link = Node::new("link", NodeType::Symlink);
    link.link_target = "/etc/passwd".into();
    link.uid = 4321;
    link.gid = 8765;
    let mut null = Node::new("null", NodeType::CharDev);
    null.mode = go_mode_from_unix(0o020_666);
    null.device = nix::sys::stat::makedev(1, 3);
    let mut block = Node::new("loop", NodeType::Dev);
    block.mode = go_mode_from_unix(0o060_660);
    block.device = nix::sys::stat::makedev(7, 0);
    let root = root(&repo, vec![owned, link, null, block]);
    let tmp = tempfile::tempdir().unwrap();
    let (_, _, problems) = run(&repo, &root, &Selection::All, tmp.path());
    assert!(problems.is_empty(), "{problems:?}");

    let owned = lstat(&tmp.path().join("owned"));
    assert_eq!((owned.uid(), owned.gid()), (1234, 5678));
    // chown clears setuid/setgid, so the mode must be set after it.
    assert_eq!(owned.mode(), 0o106_755);
    let link = lstat(&tmp.path().join("link"));
    assert_eq!((link.uid(), link.gid()), (4321, 8765));
    assert_eq!(
        lstat(Path::new("/etc/passwd")).uid(),
        0,
        "target not followed"
    );
    let null = lstat(&tmp.path().join("null"));
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), nix::sys::stat::makedev(1, 3));
    assert_eq!(null.mode() & 0o7777, 0o666);
    let block = lstat(&tmp.path().join("loop"));
    assert!(block.file_type().is_block_device());
    assert_eq!(block.rdev(), nix::sys::stat::makedev(7, 0));
}
