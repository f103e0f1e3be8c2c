//! Positioned writes of verified blob content into the files it belongs
//! to: in one piece (`pwrite`), as the pieces of a raw zstd frame (one
//! `pwritev`), with holes for `--sparse`, or, for an all-zero blob in a
//! new file, as allocated space (`fallocate`) instead of zeros copied
//! through the page cache.

use std::fs::File;
use std::io::{self, IoSlice};
use std::os::unix::fs::FileExt;

use rustix::fs::FallocateFlags;

use crate::decode::Plain;

/// Block size for finding zero runs in sparse mode.
const SPARSE_BLOCK: u64 = 4096;
/// Zeros to compare against.
static ZEROS: [u8; SPARSE_BLOCK as usize] = [0; SPARSE_BLOCK as usize];

/// How blob content goes into one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Fill {
    /// Every byte written: an existing file being updated.
    Write,
    /// A new, empty file (nothing written yet reads as zeros): an all-zero
    /// blob is allocated with `fallocate` rather than written. The file is
    /// the same — same content, no holes, space reserved — without
    /// copying zeros into the page cache and back out to the disk.
    New,
    /// A new file with `--sparse`: 4 KiB blocks of zeros are left as
    /// holes; the file's size is set when it is finished.
    Sparse,
}

/// Whether every byte of `data` is zero (fast for the usual answer, no:
/// the first block differs).
fn is_zero(data: &[u8]) -> bool {
    data.chunks(ZEROS.len()).all(|c| c == &ZEROS[..c.len()])
}

/// Whether every byte of `plain` is zero.
pub(super) fn all_zero(plain: Plain<'_>) -> bool {
    plain.slices().all(is_zero)
}

/// Write `plain` at `offset` in `file` as `fill` says; `zero` tells that
/// `plain` is all zeros (only looked at for [`Fill::New`]).
pub(super) fn write_at(
    file: &File,
    plain: Plain<'_>,
    offset: u64,
    fill: Fill,
    zero: bool,
) -> io::Result<()> {
    match fill {
        Fill::Sparse => {
            let mut at = offset;
            plain.slices().try_for_each(|part| {
                write_sparse(file, part, at)?;
                at += part.len() as u64;
                Ok(())
            })
        }
        // A file system without `fallocate` gets the zeros written.
        Fill::New if zero && allocate(file, offset, plain.len() as u64).is_ok() => Ok(()),
        Fill::New | Fill::Write => write_all_at(file, plain, offset),
    }
}

/// Allocate `len` bytes at `offset` (reading as zeros), growing the file
/// if they end past its end.
fn allocate(file: &File, offset: u64, len: u64) -> io::Result<()> {
    if len == 0 {
        return Ok(());
    }
    rustix::fs::fallocate(file, FallocateFlags::empty(), offset, len).map_err(io::Error::from)
}

/// Write `plain` at `offset`: one `pwrite`, or one `pwritev` of its pieces
/// (at most [`MAX_PIECES`](crate::decode::MAX_PIECES), within Linux's
/// limit of 1024; repeated if the kernel writes less).
fn write_all_at(file: &File, plain: Plain<'_>, mut offset: u64) -> io::Result<()> {
    let mut parts: Vec<&[u8]> = match plain {
        Plain::Whole(data) => return file.write_all_at(data, offset),
        Plain::Pieces { .. } => plain.slices().collect(),
    };
    let mut first = 0;
    while first < parts.len() {
        let slices: Vec<IoSlice<'_>> = parts[first..].iter().map(|p| IoSlice::new(p)).collect();
        let mut n = match rustix::io::pwritev(file, &slices, offset) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        };
        offset += n as u64;
        while let Some(part) = parts.get_mut(first) {
            if n < part.len() {
                *part = &part[n..];
                break;
            }
            n -= part.len();
            first += 1;
        }
    }
    Ok(())
}

/// Write `data` at `offset`, leaving blocks of zeros unwritten (holes in a
/// new file that is sized at the end).
fn write_sparse(file: &File, data: &[u8], offset: u64) -> io::Result<()> {
    let mut pos = 0usize;
    let mut pending: Option<usize> = None;
    while pos < data.len() {
        let abs = offset + pos as u64;
        let block_end = (abs / SPARSE_BLOCK + 1) * SPARSE_BLOCK;
        let end = data.len().min(pos + (block_end - abs) as usize);
        let zero = is_zero(&data[pos..end]);
        match (zero, pending) {
            (true, Some(from)) => {
                file.write_all_at(&data[from..pos], offset + from as u64)?;
                pending = None;
            }
            (false, None) => pending = Some(pos),
            _ => {}
        }
        pos = end;
    }
    if let Some(from) = pending {
        file.write_all_at(&data[from..], offset + from as u64)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ops::Range;
    use std::os::unix::fs::MetadataExt;

    fn new_file(dir: &tempfile::TempDir, name: &str) -> File {
        File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(dir.path().join(name))
            .unwrap()
    }

    #[test]
    fn pieces_are_written_in_order_at_their_offset() {
        let dir = tempfile::tempdir().unwrap();
        let file = new_file(&dir, "pieces");
        let data: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
        let pieces: Vec<Range<usize>> = vec![3..1000, 1003..5000, 5003..10_000];
        let plain = Plain::Pieces {
            data: &data,
            pieces: &pieces,
        };
        write_at(&file, plain, 100, Fill::Write, false).unwrap();
        let mut want = vec![0u8; 100];
        for r in &pieces {
            want.extend_from_slice(&data[r.clone()]);
        }
        assert_eq!(std::fs::read(dir.path().join("pieces")).unwrap(), want);
    }

    #[test]
    fn zeros_in_a_new_file_are_allocated_and_read_back_as_zeros() {
        let dir = tempfile::tempdir().unwrap();
        let file = new_file(&dir, "zeros");
        let zeros = vec![0u8; 1 << 20];
        let text = b"not zero".repeat(100);
        assert!(all_zero(Plain::Whole(&zeros)));
        assert!(!all_zero(Plain::Whole(&text)));
        write_at(&file, Plain::Whole(&text), 0, Fill::New, false).unwrap();
        write_at(&file, Plain::Whole(&zeros), 800, Fill::New, true).unwrap();
        let meta = file.metadata().unwrap();
        assert_eq!(meta.len(), 800 + (1 << 20));
        // Space is reserved as a written file's would be: no holes.
        assert!(meta.blocks() * 512 >= meta.len());
        let back = std::fs::read(dir.path().join("zeros")).unwrap();
        assert_eq!(&back[..800], &text[..]);
        assert!(is_zero(&back[800..]));
    }

    #[test]
    fn sparse_files_get_holes_for_zero_blocks_of_every_piece() {
        let dir = tempfile::tempdir().unwrap();
        let file = new_file(&dir, "sparse");
        let mut data = vec![0u8; 64 << 10];
        data[..10].fill(7);
        data[(40 << 10)..(40 << 10) + 10].fill(9);
        let pieces = vec![0..(32 << 10), (32 << 10)..(64 << 10)];
        let plain = Plain::Pieces {
            data: &data,
            pieces: &pieces,
        };
        write_at(&file, plain, 0, Fill::Sparse, true).unwrap();
        file.set_len(data.len() as u64).unwrap();
        assert_eq!(std::fs::read(dir.path().join("sparse")).unwrap(), data);
        let meta = file.metadata().unwrap();
        assert!(meta.blocks() * 512 < meta.len(), "holes expected");
    }
}
