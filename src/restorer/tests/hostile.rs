//! Restores from hostile repositories: bad names, duplicates, symlink
//! tricks and corrupted data must never write outside the target nor write
//! bad data, and must be reported.

use std::ffi::OsString;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::backend::{Backend, FileType};
use crate::blob::{BlobHandle, BlobType};
use crate::format::tree::{Node, NodeType};

use super::*;

/// A tempdir holding `target/` and `outside/`; returns (tmp, target,
/// outside) so a test can check nothing appeared next to the target.
fn layout() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("target");
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    (tmp, target, outside)
}

fn symlink(name: &str, to: &Path) -> Node {
    let mut node = Node::new(name, NodeType::Symlink);
    node.link_target = to.as_os_str().to_owned();
    node.mode = crate::format::tree::go_mode_from_unix(0o120_777);
    node
}

fn assert_untouched(tmp: &Path, outside: &Path) {
    assert_eq!(
        names(tmp),
        vec![OsString::from("outside"), OsString::from("target")]
    );
    assert!(names(outside).is_empty(), "{:?}", names(outside));
}

#[test]
fn hostile_names_are_skipped_and_reported() {
    let (_, repo) = repo();
    let escape = format!("../outside/{}", "pwned");
    let root = root(
        &repo,
        vec![
            file(&repo, "..", &[b"dotdot"]),
            file(&repo, ".", &[b"dot"]),
            file(&repo, "", &[b"empty"]),
            file(&repo, "a/b", &[b"slash"]),
            file(&repo, &escape, &[b"escape"]),
            file(&repo, "x\0y", &[b"nul"]),
            dir(&repo, "..", vec![file(&repo, "pwned", &[b"up"])]),
            file(&repo, "good", &[b"good"]),
            file(&repo, "good", &[b"duplicate"]),
        ],
    );
    let (tmp, target, outside) = layout();
    let (_, stats, problems) = run(&repo, &root, &Selection::All, &target);
    assert_untouched(tmp.path(), &outside);
    assert_eq!(names(&target), vec![OsString::from("good")]);
    assert_eq!(std::fs::read(target.join("good")).unwrap(), b"good");
    assert_eq!(problems.len(), 8, "{problems:?}");
    let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert!(text.iter().any(|p| p.contains(r#""a/b""#)), "{text:?}");
    assert!(text.iter().any(|p| p.contains(r#""x\0y""#)), "{text:?}");
    assert!(
        text.iter().any(|p| p.contains("/good: duplicate")),
        "{text:?}"
    );
    assert!(stats.is_complete(), "planning problems are the plan's");
}

#[test]
fn symlink_then_directory_of_the_same_name_cannot_escape() {
    let (_, repo) = repo();
    let (tmp, target, outside) = layout();
    // `evil -> outside`, then a directory `evil` with a child: restoring
    // the child through the symlink would write into `outside`.
    let root = root(
        &repo,
        vec![
            symlink("evil", &outside),
            dir(&repo, "evil", vec![file(&repo, "pwned", &[b"gotcha"])]),
            dir(
                &repo,
                "sub",
                vec![
                    symlink("abs", Path::new("/")),
                    dir(&repo, "abs", vec![dir(&repo, "tmp", vec![])]),
                ],
            ),
        ],
    );
    let (_, _, problems) = run(&repo, &root, &Selection::All, &target);
    assert_untouched(tmp.path(), &outside);
    assert_eq!(std::fs::read_link(target.join("evil")).unwrap(), outside);
    assert_eq!(
        std::fs::read_link(target.join("sub/abs")).unwrap(),
        Path::new("/")
    );
    let locations: Vec<&str> = problems.iter().map(|p| p.location.as_str()).collect();
    assert_eq!(locations, vec!["/evil", "/sub/abs"]);
}

#[test]
fn symlinks_already_in_the_target_are_replaced_not_followed() {
    let (_, repo) = repo();
    let (tmp, target, outside) = layout();
    std::fs::create_dir(&target).unwrap();
    std::os::unix::fs::symlink(&outside, target.join("d")).unwrap();
    std::os::unix::fs::symlink(outside.join("f"), target.join("f")).unwrap();
    std::os::unix::fs::symlink(outside.join("fifo"), target.join("fifo")).unwrap();
    let mut fifo = Node::new("fifo", NodeType::Fifo);
    fifo.mode = 0o600;
    let root = root(
        &repo,
        vec![
            dir(&repo, "d", vec![file(&repo, "pwned", &[b"gotcha"])]),
            file(&repo, "f", &[b"file"]),
            fifo,
        ],
    );
    let (_, stats, problems) = run(&repo, &root, &Selection::All, &target);
    assert!(problems.is_empty(), "{problems:?}");
    assert_untouched(tmp.path(), &outside);
    assert!(std::fs::symlink_metadata(target.join("d"))
        .unwrap()
        .is_dir());
    assert_eq!(std::fs::read(target.join("d/pwned")).unwrap(), b"gotcha");
    assert_eq!(std::fs::read(target.join("f")).unwrap(), b"file");
    assert!(stats.is_complete());
}

#[test]
fn corrupted_blob_is_not_written_and_the_rest_is_restored() {
    let (mem, repo) = repo();
    let good: &[u8] = b"the first blob is fine";
    let bad: &[u8] = b"this blob will be corrupted in its pack";
    let root = root(
        &repo,
        vec![
            file(&repo, "damaged", &[good, bad]),
            file(&repo, "intact", &[b"intact file"]),
        ],
    );
    // Flip one byte inside the second blob's ciphertext.
    let bad_id = crate::id::BlobId(crate::id::Id::hash(bad));
    let entry = repo
        .lookup(&BlobHandle::new(BlobType::Data, bad_id))
        .unwrap();
    let name = entry.pack.to_hex();
    let mut pack = mem.read(FileType::Pack, &name).unwrap();
    pack[entry.offset as usize + 20] ^= 0x40;
    mem.remove(FileType::Pack, &name).unwrap();
    mem.write(FileType::Pack, &name, &pack).unwrap();
    let before = mem.list(FileType::Pack).unwrap();

    let tmp = tempfile::tempdir().unwrap();
    let (plan, stats, problems) = run(&repo, &root, &Selection::All, tmp.path());
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].location, "/damaged");
    assert!(problems[0].message.contains("MAC"), "{}", problems[0]);
    assert!(!stats.is_complete());
    assert_eq!(stats.files_restored, 1);
    assert_eq!(
        stats.bytes_restored,
        (good.len() + b"intact file".len()) as u64
    );

    assert_eq!(
        std::fs::read(tmp.path().join("intact")).unwrap(),
        b"intact file"
    );
    let damaged = std::fs::read(tmp.path().join("damaged")).unwrap();
    assert_eq!(&damaged[..good.len()], good);
    assert!(
        damaged.len() == good.len(),
        "nothing of the bad blob is written"
    );
    // Its metadata is not restored: it keeps the mode it was created with.
    let meta = std::fs::metadata(tmp.path().join("damaged")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
    assert_eq!(
        std::fs::metadata(tmp.path().join("intact"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o644
    );
    // Verify agrees, and the repository was not modified.
    let mut found = Vec::new();
    verify(&plan, tmp.path(), None, &mut |p| found.push(p)).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(mem.list(FileType::Pack).unwrap(), before);
}

#[test]
fn hard_links_only_join_restored_files_inside_the_target() {
    let (_, repo) = repo();
    let mut a = file(&repo, "a", &[b"shared"]);
    a.links = 2;
    a.inode = 77;
    a.device_id = 3;
    let mut b = a.clone();
    b.name = "b".into();
    b.content = Some(vec![]);
    // A link to an inode no restored file has becomes a plain file.
    let mut lonely = file(&repo, "lonely", &[b"alone"]);
    lonely.links = 2;
    lonely.inode = 78;
    lonely.device_id = 3;
    let root = root(&repo, vec![a, dir(&repo, "d", vec![b]), lonely]);
    let tmp = tempfile::tempdir().unwrap();
    let (plan, _, problems) = run(&repo, &root, &Selection::All, tmp.path());
    assert!(problems.is_empty(), "{problems:?}");
    assert!(matches!(
        plan.items[2].kind,
        ItemKind::HardLink { first: 0 }
    ));
    let ma = std::fs::metadata(tmp.path().join("a")).unwrap();
    let mb = std::fs::metadata(tmp.path().join("d/b")).unwrap();
    assert_eq!((ma.ino(), ma.nlink()), (mb.ino(), 2));
    assert_eq!(std::fs::read(tmp.path().join("d/b")).unwrap(), b"shared");
    assert_eq!(
        std::fs::metadata(tmp.path().join("lonely"))
            .unwrap()
            .nlink(),
        1
    );
}

#[test]
fn directory_without_subtree_or_unreadable_subtree_is_reported() {
    let (_, repo) = repo();
    let no_subtree = Node::new("nosub", NodeType::Dir);
    let mut missing = Node::new("missing", NodeType::Dir);
    missing.subtree = Some(TreeId(crate::id::Id::hash(b"no such tree")));
    let mut odd = Node::new("odd", NodeType::Other("whiteout".into()));
    odd.mode = 0o644;
    let mut socket = Node::new("sock", NodeType::Socket);
    socket.mode = 0o755;
    let root = root(
        &repo,
        vec![
            no_subtree,
            missing,
            odd,
            socket,
            file(&repo, "ok", &[b"ok"]),
        ],
    );
    let tmp = tempfile::tempdir().unwrap();
    let (_, _, problems) = run(&repo, &root, &Selection::All, tmp.path());
    let locations: Vec<&str> = problems.iter().map(|p| p.location.as_str()).collect();
    assert_eq!(
        locations,
        vec!["/nosub", "/missing", "/odd"],
        "{problems:?}"
    );
    // The unreadable directory itself is created (restic does too); the
    // socket is skipped silently.
    assert_eq!(
        names(tmp.path()),
        vec![OsString::from("missing"), OsString::from("ok")]
    );
}
