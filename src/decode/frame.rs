//! Compressed blobs that are stored, not compressed: a zstd frame made
//! only of raw blocks holds its content verbatim, in pieces of at most
//! 128 KiB between three-byte block headers.
//!
//! restic compresses every data blob of a v2 repository; incompressible
//! data (most of a typical backup by size) comes out as such a frame.
//! Finding the pieces lets a reader hash and use them straight from the
//! decrypted pack read (a restore writes them with one `pwritev`, a mount
//! moves them together where they lie) instead of copying them through
//! zstd into another buffer first.
//!
//! The parser is deliberately narrow: it accepts only a single frame with
//! no dictionary, no checksum, a sane window, raw blocks within zstd's
//! block limits and, if recorded, a content size equal to the expected
//! length, ending exactly where the data ends. Such a frame decompresses
//! (with zstd) to exactly the pieces found here, so both ways agree; for
//! everything else (compressed or RLE blocks included) it answers `None`
//! and the caller decompresses with zstd, which does its own checks. The
//! caller still checks the content's length and hash.

use std::ops::Range;

/// zstd's frame magic number (little endian).
const MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// zstd's largest block content.
const MAX_BLOCK: usize = 128 << 10;
/// Largest window accepted (zstd's default decoder limit, 2^27).
const MAX_WINDOW_LOG: u32 = 27;
/// Block type of a raw block.
const RAW: u32 = 0;
/// Most pieces accepted (zstd writes 128 KiB blocks, so an 8 MiB blob, the
/// chunker's largest, has 64): bounds the list and one `pwritev`'s vector
/// (Linux takes up to 1024).
pub const MAX_PIECES: usize = 1024;

/// The pieces of `data`, a zstd frame of raw blocks that holds exactly
/// `expected` bytes, as ranges of `data` in order, appended to `pieces`
/// (cleared first). `None` (and `pieces` unspecified) if `data` is not
/// such a frame.
pub(super) fn raw_pieces(
    data: &[u8],
    expected: usize,
    pieces: &mut Vec<Range<usize>>,
) -> Option<()> {
    pieces.clear();
    if data.get(..4)? != MAGIC {
        return None;
    }
    let descriptor = *data.get(4)?;
    let content_size_flag = descriptor >> 6;
    let single_segment = descriptor & 0x20 != 0;
    let reserved = descriptor & 0x08 != 0;
    let checksum = descriptor & 0x04 != 0;
    let dictionary = descriptor & 0x03 != 0;
    if reserved || checksum || dictionary {
        return None;
    }
    let mut at = 5;
    let window = if single_segment {
        None
    } else {
        let byte = *data.get(at)?;
        at += 1;
        let log = 10 + u32::from(byte >> 3);
        if log > MAX_WINDOW_LOG {
            return None;
        }
        let base = 1usize << log;
        Some(base + (base / 8) * usize::from(byte & 7))
    };
    let size_len = match (content_size_flag, single_segment) {
        (0, false) => 0,
        (0, true) => 1,
        (1, _) => 2,
        (2, _) => 4,
        _ => 8,
    };
    let size_bytes = data.get(at..at + size_len)?;
    at += size_len;
    let mut content_size = 0u64;
    for (i, b) in size_bytes.iter().enumerate() {
        content_size |= u64::from(*b) << (8 * i);
    }
    if size_len == 2 {
        content_size += 256;
    }
    if size_len > 0 && content_size != expected as u64 {
        return None;
    }
    // A single-segment frame's window is its content.
    let block_max = window.unwrap_or(expected).min(MAX_BLOCK);
    let mut total = 0usize;
    loop {
        let header = data.get(at..at + 3)?;
        let header = u32::from(header[0]) | u32::from(header[1]) << 8 | u32::from(header[2]) << 16;
        at += 3;
        let last = header & 1 != 0;
        let size = (header >> 3) as usize;
        if (header >> 1) & 3 != RAW || size > block_max {
            return None;
        }
        let end = at.checked_add(size).filter(|&end| end <= data.len())?;
        total += size;
        if total > expected {
            return None;
        }
        if size > 0 {
            if pieces.len() == MAX_PIECES {
                return None;
            }
            pieces.push(at..end);
        }
        at = end;
        if last {
            break;
        }
    }
    (at == data.len() && total == expected).then_some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What zstd makes of `data`, and whether `raw_pieces` found the
    /// same content.
    fn agree(frame: &[u8], expected: usize) -> Option<Vec<u8>> {
        let mut pieces = Vec::new();
        let found = raw_pieces(frame, expected, &mut pieces).map(|()| {
            pieces
                .iter()
                .flat_map(|r| frame[r.clone()].iter().copied())
                .collect::<Vec<u8>>()
        });
        if let Some(content) = &found {
            let mut out = Vec::new();
            crate::compression::decompress_into(frame, expected, &mut out)
                .expect("zstd accepts every frame raw_pieces accepts");
            assert_eq!(&out, content);
        }
        found
    }

    /// A frame header: magic, descriptor, then `rest` (window, size).
    fn header(descriptor: u8, rest: &[u8]) -> Vec<u8> {
        let mut frame = MAGIC.to_vec();
        frame.push(descriptor);
        frame.extend_from_slice(rest);
        frame
    }

    fn block(frame: &mut Vec<u8>, kind: u32, last: bool, body: &[u8], size: usize) {
        let header = u32::from(last) | kind << 1 | (size as u32) << 3;
        frame.extend_from_slice(&header.to_le_bytes()[..3]);
        frame.extend_from_slice(body);
    }

    #[test]
    fn incompressible_data_from_zstd_is_found_in_pieces() {
        let noise = crate::testutil::noise(1, 300_000);
        for level in [1, 3] {
            let frame = zstd::bulk::compress(&noise, level).unwrap();
            assert_eq!(agree(&frame, noise.len()).as_deref(), Some(&noise[..]));
            // Another expected length is refused.
            assert_eq!(agree(&frame, noise.len() - 1), None);
        }
        // Compressible data is left to zstd.
        let text = b"a compressible text ".repeat(10_000);
        let frame = zstd::bulk::compress(&text, 3).unwrap();
        assert_eq!(agree(&frame, text.len()), None);
    }

    #[test]
    fn hand_made_frames_are_accepted_only_when_zstd_agrees() {
        let body: Vec<u8> = (0..100u8).collect();
        // Window 1 KiB (log 10), no content size, one raw block.
        let mut good = header(0x00, &[0x00]);
        block(&mut good, RAW, true, &body, body.len());
        assert_eq!(agree(&good, 100).as_deref(), Some(&body[..]));
        // Two blocks, single segment with a one-byte content size.
        let mut two = header(0x20, &[200]);
        block(&mut two, RAW, false, &body, 100);
        block(&mut two, RAW, true, &body, 100);
        assert_eq!(agree(&two, 200).map(|c| c.len()), Some(200));
        // Content size other than expected.
        let mut size = header(0x20, &[99]);
        block(&mut size, RAW, true, &body, 100);
        assert_eq!(agree(&size, 100), None);
        // Checksum, dictionary or reserved bit: left to zstd.
        for descriptor in [0x04, 0x01, 0x08] {
            let mut frame = header(descriptor, &[0x00, 0x00]);
            block(&mut frame, RAW, true, &body, 100);
            assert_eq!(agree(&frame, 100), None, "descriptor {descriptor:#x}");
        }
        // An RLE block.
        let mut rle = header(0x00, &[0x00]);
        block(&mut rle, 1, true, &[7], 100);
        assert_eq!(agree(&rle, 100), None);
        // A block larger than the window (1 KiB).
        let big = vec![1u8; 2000];
        let mut over = header(0x00, &[0x00]);
        block(&mut over, RAW, true, &big, big.len());
        assert_eq!(agree(&over, big.len()), None);
        // No last block, a truncated block, or bytes after the frame.
        let mut open = header(0x00, &[0x00]);
        block(&mut open, RAW, false, &body, 100);
        assert_eq!(agree(&open, 100), None);
        assert_eq!(agree(&good[..good.len() - 1], 100), None);
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(agree(&trailing, 100), None);
        // Too many pieces.
        let mut many = header(0x00, &[0x00]);
        for i in 0..=MAX_PIECES {
            block(&mut many, RAW, i == MAX_PIECES, &[1], 1);
        }
        assert_eq!(agree(&many, MAX_PIECES + 1), None);
        // Not a frame at all.
        assert_eq!(agree(&body, 100), None);
        assert_eq!(agree(&[], 0), None);
    }
}
