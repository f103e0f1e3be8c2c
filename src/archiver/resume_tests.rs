//! Tests of interrupting, checkpointing, resuming and live files: real
//! files, a memory repository, the real pipeline threads.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::tests::{backup, content, node_at, noise, repository, Recorder};
use super::*;
use crate::backend::{FileType, MemBackend};
use crate::testutil::PackHook;

/// The big file spans several of a reader's 10 MiB read blocks, so an
/// interrupt once it has read past the first (see the first test) finds
/// some of its chunks dispatched and some not yet read.
const BIG: usize = 32 << 20;

/// A directory with one big file first (in name order) and a few small
/// ones after it.
fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("a_big.bin"), noise(BIG, 11)).unwrap();
    std::fs::write(d.join("b.txt"), b"bee\n").unwrap();
    std::fs::create_dir(d.join("c")).unwrap();
    std::fs::write(d.join("c/d.txt"), noise(5000, 3)).unwrap();
    dir
}

/// A repository in `mem` with 4 MiB packs, and a backup of `dir` into it
/// that is interrupted when its first pack is stored: a point every backup
/// of the fixture reaches after some of the big file's chunks are saved
/// and, the pipeline's memory being bounded, long before all of its 32 MiB
/// are read.
fn interrupted(mem: &Arc<MemBackend>, dir: &Path) -> (Repository, Result<BackupSummary>, Recorder) {
    let flag = Arc::new(AtomicBool::new(false));
    let raise = Arc::clone(&flag);
    let tripwire = Arc::new(PackHook {
        mem: Arc::clone(mem),
        hook: move |_: &str| {
            raise.store(true, Ordering::SeqCst);
            Ok(())
        },
    });
    let mut repo =
        Repository::open(tripwire, b"pw", &crate::repository::OpenOptions::default()).unwrap();
    repo.load_index().unwrap();
    repo.set_pack_size(4 << 20);
    let opts = BackupOptions {
        interrupt: Some(flag),
        ..BackupOptions::default()
    };
    let rec = Recorder::default();
    let result = Archiver::new(&repo, opts).backup(&[dir.to_path_buf()], &rec);
    (repo, result, rec)
}

#[test]
fn interrupted_backup_saves_a_checkpoint_and_the_next_run_reads_only_the_rest() {
    let (_, mem) = repository();
    let src = fixture();
    let big = src.path().join("a_big.bin");

    let (repo, result, rec) = interrupted(&mem, src.path());
    assert!(
        matches!(result, Err(Error::Interrupted)),
        "{:?}",
        result.err()
    );
    let snapshots = repo.list_snapshots().unwrap();
    assert_eq!(snapshots.len(), 1, "exactly one checkpoint");
    let (cp_id, cp) = &snapshots[0];
    assert!(is_checkpoint(cp) && cp.summary.is_none());
    assert_eq!(rec.checkpoints.lock().as_slice(), [*cp_id]);

    // The checkpoint holds the small files and a prefix of the big one, cut
    // at a chunk boundary, with its size; its content is the file's start.
    let partial = node_at(&repo, &cp.tree, &big).expect("big file in checkpoint");
    assert!(
        partial.size > 0 && partial.size < BIG as u64,
        "{}",
        partial.size
    );
    let stored = content(&repo, &partial);
    assert_eq!(stored.len() as u64, partial.size);
    assert_eq!(stored, noise(BIG, 11)[..stored.len()]);
    assert!(node_at(&repo, &cp.tree, &src.path().join("c/d.txt")).is_some());
    // The repository is consistent: every indexed pack exists.
    let reopened = Repository::open(
        mem.clone(),
        b"pw",
        &crate::repository::OpenOptions::default(),
    )
    .unwrap();
    reopened.load_index().unwrap();
    assert_eq!(content(&reopened, &partial), stored);

    // The next run resumes: only the rest of the big file is read.
    let (summary, rec) = backup(&repo, BackupOptions::default(), &[src.path()]);
    assert_eq!(summary.files_resumed, 1);
    assert_eq!(summary.bytes_read, BIG as u64 - partial.size);
    assert!(rec.errors.lock().is_empty(), "{:?}", rec.errors.lock());
    assert_eq!(summary.checkpoints_removed, [*cp_id]);
    let snapshots = repo.list_snapshots().unwrap();
    assert_eq!(snapshots.len(), 1, "the checkpoint is gone");
    assert!(!is_checkpoint(&snapshots[0].1));
    assert_eq!(summary.parent, None, "a checkpoint is never a parent");
    let root = summary.snapshot.tree;
    let full = node_at(&repo, &root, &big).unwrap();
    assert_eq!(full.size, BIG as u64);
    assert_eq!(content(&repo, &full), noise(BIG, 11));

    // Chunk boundaries after the cut are those of an uninterrupted read.
    let fresh = BackupOptions {
        parent: ParentChoice::None,
        ..BackupOptions::default()
    };
    let (again, _) = backup(&repo, fresh, &[src.path()]);
    assert_eq!(again.bytes_read, BIG as u64 + 4 + 5000);
    assert_eq!(again.stats.data_blobs, 0, "nothing new: same chunks");
    let reread = node_at(&repo, &again.snapshot.tree, &big).unwrap();
    assert_eq!(reread.content, full.content);
}

#[test]
fn periodic_checkpoints_are_replaced_and_removed_at_the_end() {
    let (repo, _mem) = repository();
    let src = fixture();
    let opts = BackupOptions {
        checkpoint_interval: Some(Duration::ZERO),
        ..BackupOptions::default()
    };
    let (summary, rec) = backup(&repo, opts, &[src.path()]);
    let saved = rec.checkpoints.lock().clone();
    assert!(saved.len() >= 2, "a checkpoint at every step: {saved:?}");
    let ids = repo.list_ids(FileType::Snapshot).unwrap();
    assert_eq!(
        ids,
        [summary.snapshot_id.unwrap().0],
        "only the final snapshot is left"
    );
    assert_eq!(summary.checkpoints_removed, [*saved.last().unwrap()]);
    assert_eq!(summary.bytes_read, BIG as u64 + 4 + 5000);
    let big = node_at(&repo, &summary.snapshot.tree, &src.path().join("a_big.bin")).unwrap();
    assert_eq!(content(&repo, &big), noise(BIG, 11));
}

#[test]
fn a_file_that_keeps_changing_is_read_again_then_flagged() {
    let (repo, _mem) = repository();
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live.log");
    let steady = dir.path().join("steady.txt");
    std::fs::write(&live, noise(2 << 20, 5)).unwrap();
    std::fs::write(&steady, b"steady\n").unwrap();
    let stop = AtomicBool::new(false);
    let (summary, rec) = std::thread::scope(|s| {
        s.spawn(|| {
            let mut f = std::fs::File::options().append(true).open(&live).unwrap();
            while !stop.load(Ordering::Relaxed) {
                f.write_all(b"another line\n").unwrap();
                std::thread::sleep(Duration::from_micros(200));
            }
        });
        let opts = BackupOptions {
            changed_retries: 1,
            ..BackupOptions::default()
        };
        let result = backup(&repo, opts, &[dir.path()]);
        stop.store(true, Ordering::Relaxed);
        result
    });
    assert_eq!(summary.changed_during_backup, 1);
    assert_eq!(rec.changed.lock().as_slice(), std::slice::from_ref(&live));
    assert!(summary.is_complete(), "a changing file is not an error");
    assert!(
        summary.bytes_read > 2 * (2 << 20),
        "read twice: {}",
        summary.bytes_read
    );
    let node = node_at(&repo, &summary.snapshot.tree, &live).unwrap();
    let stored = content(&repo, &node);
    assert_eq!(stored.len() as u64, node.size, "size is what was read");
    assert_eq!(stored[..2 << 20], noise(2 << 20, 5)[..]);
    // The recorded mtime predates the last change: the next backup reads
    // the file again instead of trusting it.
    let now = std::fs::metadata(&live).unwrap();
    assert!(ChangeDetection::default().file_changed(&now, &node));
}

#[test]
fn skip_if_unchanged_saves_no_snapshot() {
    let (repo, _mem) = repository();
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("f"), b"same").unwrap();
    let (first, _) = backup(&repo, BackupOptions::default(), &[src.path()]);
    let opts = BackupOptions {
        skip_if_unchanged: true,
        ..BackupOptions::default()
    };
    let (second, _) = backup(&repo, opts.clone(), &[src.path()]);
    assert!(second.skipped && second.snapshot_id.is_none());
    assert_eq!(second.bytes_read, 0);
    assert_eq!(repo.list_snapshots().unwrap().len(), 1);
    std::fs::write(src.path().join("g"), b"new").unwrap();
    let (third, _) = backup(&repo, opts, &[src.path()]);
    assert!(!third.skipped);
    assert_eq!(third.parent, first.snapshot_id);
    assert_eq!(repo.list_snapshots().unwrap().len(), 2);
}

#[test]
fn progress_counts_files_bytes_and_totals() {
    let (repo, _mem) = repository();
    let src = fixture();
    let archiver = Archiver::new(&repo, BackupOptions::default());
    let progress = archiver.progress();
    let paths: Vec<PathBuf> = vec![src.path().to_path_buf()];
    let summary = archiver.backup(&paths, &Recorder::default()).unwrap();
    let s = progress.snapshot();
    let total = BIG as u64 + 4 + 5000;
    assert_eq!(
        (s.files_done, s.bytes_done, s.bytes_read),
        (3, total, total)
    );
    assert_eq!((s.total_files, s.total_bytes), (3, total));
    assert!(s.scan_finished && s.current_files.is_empty());
    assert_eq!(summary.bytes_read, total);
    // Unchanged files are done without being read.
    let archiver = Archiver::new(&repo, BackupOptions::default());
    let progress = archiver.progress();
    archiver.backup(&paths, &Recorder::default()).unwrap();
    let s = progress.snapshot();
    assert_eq!((s.files_done, s.bytes_done, s.bytes_read), (3, total, 0));
}
