//! The scanner: counts what a backup will visit, ahead of it, so progress
//! can show totals and an ETA (restic's scanner; `--no-scan` skips it).
//!
//! It walks the same targets with the same exclusion rules as the tree
//! builder, `lstat`s every item and adds regular files and their sizes to
//! [`Progress`] totals in batches. It reads no file content and reports no
//! problems: an item it cannot see is simply not counted (the builder
//! reports it). It stops early when the stop flag is set.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use super::progress::Progress;
use super::select::Selector;
use super::targets::TargetTree;

/// Add totals every this many files.
const BATCH: u64 = 256;

/// Count the files and bytes below `targets` into `progress`, then mark
/// the scan finished (unless stopped).
pub fn scan(targets: &TargetTree, select: &Selector, progress: &Progress, stop: &AtomicBool) {
    let mut stack: Vec<PathBuf> = Vec::new();
    let mut intermediate = vec![targets];
    while let Some(node) = intermediate.pop() {
        if let Some(path) = &node.path {
            stack.push(path.clone());
        }
        intermediate.extend(node.nodes.values());
    }
    let (mut files, mut bytes) = (0u64, 0u64);
    while let Some(path) = stack.pop() {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        if select.excluded_by_name(&path, &|_| {}) {
            continue;
        }
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if select.excluded_by_info(&path, &meta) {
            continue;
        }
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                stack.extend(entries.flatten().map(|e| path.join(e.file_name())));
            }
        } else if meta.is_file() {
            files += 1;
            bytes += meta.len();
            if files % BATCH == 0 {
                progress.add_total(files, bytes);
                (files, bytes) = (0, 0);
            }
        }
    }
    progress.add_total(files, bytes);
    progress.scan_finished();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archiver::select::ExcludeOptions;
    use crate::filter::PatternSet;

    #[test]
    fn counts_files_and_bytes_minus_excluded() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("a/b")).unwrap();
        std::fs::write(d.join("a/one"), vec![0u8; 100]).unwrap();
        std::fs::write(d.join("a/b/two"), vec![0u8; 1000]).unwrap();
        std::fs::write(d.join("a/b/skip.tmp"), vec![0u8; 50]).unwrap();
        for i in 0..300 {
            std::fs::write(d.join(format!("f{i}")), b"x").unwrap();
        }
        std::os::unix::fs::symlink("a", d.join("link")).unwrap();
        let targets = TargetTree::new(&[d.to_path_buf()], std::path::Path::new("/")).unwrap();
        let opts = ExcludeOptions {
            patterns: PatternSet::new(&["*.tmp".to_string()], false).unwrap(),
            ..ExcludeOptions::default()
        };
        let select = Selector::new(&opts, &[d.to_path_buf()]).unwrap();
        let progress = Progress::new();
        scan(&targets, &select, &progress, &AtomicBool::new(false));
        let s = progress.snapshot();
        assert!(s.scan_finished);
        assert_eq!((s.total_files, s.total_bytes), (302, 1400));
    }
}
