//! Tests of [`LocalBackend`](super::LocalBackend): the conformance suite,
//! restic's layout and modes, temporary files and uploads.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;

use super::*;
use crate::backend::mem::conformance;

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().mode() & 0o7777
}

/// Every path below `dir`, relative, with its mode.
fn tree(dir: &Path) -> BTreeSet<(String, u32)> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<(String, u32)>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            out.insert((rel, mode(&path)));
            if path.is_dir() {
                walk(root, &path, out);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(dir, dir, &mut out);
    out
}

fn new_repo() -> (tempfile::TempDir, LocalBackend) {
    let dir = tempfile::tempdir().unwrap();
    let be = LocalBackend::new(dir.path().join("repo"));
    be.create().unwrap();
    (dir, be)
}

#[test]
fn conformance_and_nothing_outside_the_repository() {
    let outer = tempfile::tempdir().unwrap();
    let repo = outer.path().join("repo");
    let be = LocalBackend::new(&repo);
    conformance::run(&be);
    let names: Vec<_> = fs::read_dir(outer.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec!["repo"]);
    // No temporary file survived a write, failed or not.
    let leftovers = temp_files(&repo);
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// The temporary files below `dir`.
fn temp_files(dir: &Path) -> Vec<(String, u32)> {
    tree(dir)
        .into_iter()
        .filter(|(p, _)| p.contains(TEMP_INFIX))
        .collect()
}

#[test]
fn uploads_stream_into_a_temporary_file_committed_like_writes() {
    let (dir, be) = new_repo();
    let be = Arc::new(be);
    conformance::uploads(be.clone());
    let mut upload = LocalUpload::start(be.clone(), FileType::Pack).unwrap();
    let tmp = upload.temp_path().to_path_buf();
    // In `data/`, where no listing looks for packs.
    assert_eq!(tmp.parent(), Some(&*be.path().join("data")));
    upload.write(&[5; 300_000]).unwrap();
    assert_eq!(
        fs::metadata(&tmp).unwrap().len(),
        300_000,
        "streamed, not held"
    );
    let listed = be.list(FileType::Pack).unwrap();
    assert_eq!(listed.len(), 1, "only the suite's pack: {listed:?}");
    // The final directory may be missing: it is created.
    let name = conformance::name("streamed");
    fs::remove_dir(be.path().join("data").join(&name[..2])).unwrap();
    Box::new(upload).finish(&name).unwrap();
    let path = be.path().join("data").join(&name[..2]).join(&name);
    assert_eq!(fs::read(&path).unwrap(), vec![5; 300_000]);
    assert_eq!(mode(&path), 0o400);
    assert!(!tmp.exists());

    let mut dropped = LocalUpload::start(be.clone(), FileType::Pack).unwrap();
    dropped.write(b"partial").unwrap();
    let tmp = dropped.temp_path().to_path_buf();
    assert!(tmp.exists());
    drop(dropped);
    assert!(!tmp.exists(), "an unfinished upload leaves nothing");
    let leftovers = temp_files(dir.path());
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn create_makes_the_tree_restic_init_makes() {
    let (dir, be) = new_repo();
    let mut expected: BTreeSet<(String, u32)> = ["keys", "snapshots", "index", "locks", "data"]
        .iter()
        .map(|d| (d.to_string(), 0o700))
        .collect();
    expected.extend((0..=255).map(|b| (format!("data/{b:02x}"), 0o700)));
    assert_eq!(tree(be.path()), expected);
    assert_eq!(mode(&dir.path().join("repo")), 0o700);

    // Files are written 0600 and left read-only, as restic leaves them.
    be.write(FileType::Config, "config", b"c").unwrap();
    let key = conformance::name("key");
    be.write(FileType::Key, &key, b"k").unwrap();
    assert_eq!(mode(&be.path().join("config")), 0o400);
    assert_eq!(mode(&be.path().join("keys").join(&key)), 0o400);
    assert!(matches!(be.create(), Err(Error::AlreadyExists(_))));
}

#[test]
fn group_readable_config_widens_modes_as_restic() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    LocalBackend::new(&root).create().unwrap();
    fs::write(root.join("config"), b"c").unwrap();
    fs::set_permissions(root.join("config"), Permissions::from_mode(0o640)).unwrap();
    fs::remove_dir(root.join("data/ab")).unwrap();

    let be = LocalBackend::new(&root);
    let pack = format!("ab{}", &conformance::name("p")[2..]);
    be.write(FileType::Pack, &pack, b"p").unwrap();
    assert_eq!(mode(&root.join("data/ab").join(&pack)), 0o440);
    assert_eq!(mode(&root.join("data/ab")), 0o750);
}

#[test]
fn leftover_temp_files_are_ignored_and_do_not_block_writes() {
    let (_dir, be) = new_repo();
    let pack = conformance::name("crashed");
    let key = conformance::name("crashed key");
    // What a writer (ours or restic's) killed mid-write leaves behind.
    let pack_dir = be.path().join("data").join(&pack[..2]);
    let stale_pack = pack_dir.join(format!("{pack}-tmp-0123456789abcdef"));
    let stale_key = be.path().join("keys").join(format!("{key}-tmp-4242"));
    fs::write(&stale_pack, b"partial").unwrap();
    fs::write(&stale_key, b"partial").unwrap();
    assert!(be.list(FileType::Pack).unwrap().is_empty());
    assert!(be.list(FileType::Key).unwrap().is_empty());
    assert!(!be.exists(FileType::Pack, &pack).unwrap());

    be.write(FileType::Pack, &pack, b"whole").unwrap();
    be.write(FileType::Key, &key, b"whole key").unwrap();
    assert_eq!(
        be.list(FileType::Pack).unwrap(),
        vec![FileInfo {
            name: pack.clone(),
            size: 5
        }]
    );
    assert_eq!(be.read(FileType::Pack, &pack).unwrap(), b"whole");
    assert_eq!(be.list(FileType::Key).unwrap().len(), 1);
    // Another writer's temporary file is not ours to remove.
    assert!(stale_pack.exists() && stale_key.exists());
}

#[test]
fn list_skips_strangers() {
    let (_dir, be) = new_repo();
    let good = conformance::name("good");
    be.write(FileType::Pack, &good, b"x").unwrap();
    be.write(FileType::Snapshot, &good, b"s").unwrap();
    let other = conformance::name("misplaced");
    let wrong_dir = if other.starts_with("00") { "01" } else { "00" };
    let root = be.path();
    fs::write(root.join("data").join(wrong_dir).join(&other), b"m").unwrap();
    fs::write(root.join("data").join(&other), b"not in a subdir").unwrap();
    fs::create_dir(root.join("data/zz")).unwrap();
    fs::write(root.join("data/zz").join(&other), b"bad subdir").unwrap();
    fs::write(root.join("snapshots/README"), b"hello").unwrap();
    fs::write(root.join("snapshots").join(good.to_ascii_uppercase()), b"u").unwrap();
    fs::create_dir(root.join("snapshots").join(&other)).unwrap();

    let names = |t| -> Vec<String> { be.list(t).unwrap().into_iter().map(|f| f.name).collect() };
    assert_eq!(names(FileType::Pack), vec![good.clone()]);
    assert_eq!(names(FileType::Snapshot), vec![good]);
}

#[test]
fn missing_type_and_pack_dirs_are_tolerated_and_recreated() {
    let (_dir, be) = new_repo();
    fs::remove_dir(be.path().join("locks")).unwrap();
    assert!(be.list(FileType::Lock).unwrap().is_empty());
    let lock = conformance::name("lock");
    be.write(FileType::Lock, &lock, b"l").unwrap();
    assert_eq!(be.read(FileType::Lock, &lock).unwrap(), b"l");

    fs::remove_dir_all(be.path().join("data")).unwrap();
    assert!(be.list(FileType::Pack).unwrap().is_empty());
    let pack = conformance::name("pack");
    be.write(FileType::Pack, &pack, b"p").unwrap();
    assert_eq!(be.list(FileType::Pack).unwrap().len(), 1);
    assert_eq!(mode(&be.path().join("data")), 0o700);
}

#[test]
fn missing_repository_is_a_clean_not_found_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("nope");
    let be = LocalBackend::new(&root);
    let shown = root.display().to_string();
    for result in [
        be.read(FileType::Config, "config").map(drop),
        be.list(FileType::Config).map(drop),
        be.list(FileType::Pack).map(drop),
        be.list(FileType::Snapshot).map(drop),
        be.write(FileType::Key, &conformance::name("k"), b"k"),
        be.write(FileType::Config, "config", b"c"),
    ] {
        match result {
            Err(e @ Error::NotFound(_)) => assert!(e.to_string().contains(&shown), "{e}"),
            other => panic!("expected NotFound, got {other:?}"),
        }
    }
    assert!(!be.exists(FileType::Config, "config").unwrap());
    assert!(!root.exists(), "a write must not create the repository");
}

#[test]
fn failed_write_leaves_no_temporary_file() {
    let (_dir, be) = new_repo();
    let name = conformance::name("twice");
    be.write(FileType::Index, &name, b"one").unwrap();
    assert!(matches!(
        be.write(FileType::Index, &name, b"two"),
        Err(Error::AlreadyExists(_))
    ));
    let entries: Vec<_> = fs::read_dir(be.path().join("index"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(entries, vec![name.clone()]);
    assert_eq!(be.read(FileType::Index, &name).unwrap(), b"one");
}

#[test]
fn publish_fallbacks_never_replace() {
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("dst");
    for publish_fn in [publish_by_link, publish_checked] {
        let _ = fs::remove_file(&dst);
        let tmp = dir.path().join("tmp");
        fs::write(&tmp, b"first").unwrap();
        publish_fn(&tmp, &dst).unwrap();
        assert!(!tmp.exists(), "the temporary name is gone");
        fs::write(&tmp, b"second").unwrap();
        let err = publish_fn(&tmp, &dst).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&dst).unwrap(), b"first");
        fs::remove_file(&tmp).unwrap();
    }
    // Replacing, for locks.
    let tmp = dir.path().join("tmp");
    fs::write(&tmp, b"third").unwrap();
    publish(&tmp, &dst, true).unwrap();
    assert_eq!(fs::read(&dst).unwrap(), b"third");
}

#[test]
fn large_ranges_are_read_exactly() {
    let (_dir, be) = new_repo();
    let name = conformance::name("large");
    let data: Vec<u8> = (0..9u32 << 20).map(|i| (i % 251) as u8).collect();
    be.write(FileType::Pack, &name, &data).unwrap();
    for (offset, len) in [(0, data.len()), (1, data.len() - 2), (3 << 20, 4 << 20)] {
        let got = be
            .read_range(FileType::Pack, &name, offset as u64, len as u64)
            .unwrap();
        assert_eq!(got.len(), len);
        assert!(got == data[offset..offset + len], "({offset}, {len})");
    }
}

#[test]
fn read_range_of_a_truncated_file_names_it() {
    let (_dir, be) = new_repo();
    let name = conformance::name("short");
    be.write(FileType::Pack, &name, &[1; 10]).unwrap();
    let err = be
        .read_range(FileType::Pack, &name, 4, 1 << 40)
        .unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains(&name) && msg.contains("10 bytes"), "{msg}");
}
