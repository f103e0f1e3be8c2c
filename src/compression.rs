//! zstd compression of blobs and unpacked files, as repository format v2
//! defines it.
//!
//! - Blobs: in v2, tree blobs are always compressed and data blobs unless
//!   the mode is [`CompressionMode::Off`]; the index records the
//!   uncompressed length. (Which blobs to compress is the caller's choice;
//!   this module only compresses.)
//! - Unpacked files (index, snapshot, lock; not config, not keys): in v2
//!   the plaintext is a version byte `2` followed by one zstd stream, or,
//!   for files written before compression existed, plain JSON starting
//!   with `{` or `[`. restic compresses them whatever the compression mode
//!   (the mode only picks the level), and so does [`encode_unpacked`].
//!
//! Levels mirror restic's encoder (klauspost/compress): `auto` uses
//! `SpeedDefault`, documented as roughly zstd level 3; `max` uses
//! `SpeedBestCompression`, roughly zstd level 11, so "max" costs about what
//! it costs in restic rather than the much slower levels 19+. Like restic,
//! frames have no checksum (the MAC and the blob hash already protect the
//! data) and a 512 KiB window.
//!
//! Decompression never trusts the input: output is bounded by the caller's
//! `max_len` (a small zstd "bomb" cannot make us allocate more), and the
//! decoder refuses frames that ask for a window larger than needed.

use std::cell::RefCell;
use std::fmt;
use std::str::FromStr;

use zstd::zstd_safe::{CParameter, DCtx, DParameter, InBuffer, OutBuffer, ResetDirective};

use crate::error::{Error, Result};

/// zstd level for [`CompressionMode::Auto`].
pub const LEVEL_AUTO: i32 = 3;
/// zstd level for [`CompressionMode::Max`].
pub const LEVEL_MAX: i32 = 11;
/// log2 of the compression window restic uses (512 KiB).
const WINDOW_LOG: u32 = 19;
/// The largest window a decoder accepts is `max_len` rounded up to a power
/// of two, but never below this (8 MiB, the largest window common encoders
/// pick by default) nor above zstd's own default limit (128 MiB).
const MIN_WINDOW_LOG_MAX: u32 = 23;
const MAX_WINDOW_LOG_MAX: u32 = 27;

/// Size of the buffer decompression reads through.
const CHUNK_LEN: usize = 64 * 1024;

/// [`decompress`] trusts a frame's declared content size up to this many
/// bytes: it reserves that much (address space: nothing is resident until
/// written) and expands the frame in one call, about twice as fast as
/// streaming into a growing buffer. Larger claims stream.
const ONE_SHOT_LIMIT: usize = 64 << 20;

/// Version byte of a compressed unpacked file.
const UNPACKED_V2: u8 = 2;

/// How much effort to spend compressing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CompressionMode {
    /// Fast compression (restic's default).
    #[default]
    Auto,
    /// Do not compress data blobs.
    Off,
    /// Best compression.
    Max,
}

impl CompressionMode {
    /// The zstd level, or `None` for `Off`.
    pub fn level(self) -> Option<i32> {
        match self {
            CompressionMode::Auto => Some(LEVEL_AUTO),
            CompressionMode::Off => None,
            CompressionMode::Max => Some(LEVEL_MAX),
        }
    }
}

impl fmt::Display for CompressionMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CompressionMode::Auto => "auto",
            CompressionMode::Off => "off",
            CompressionMode::Max => "max",
        })
    }
}

impl FromStr for CompressionMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(CompressionMode::Auto),
            "off" => Ok(CompressionMode::Off),
            "max" => Ok(CompressionMode::Max),
            _ => Err(Error::InvalidArgument(format!(
                "invalid compression mode {s:?}: want auto, off or max"
            ))),
        }
    }
}

thread_local! {
    /// One compression context per thread and level: creating a zstd
    /// context allocates and clears its tables, which costs a noticeable
    /// share of compressing a 1 MiB blob.
    static COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { RefCell::new(None) };
}

/// Compress `data` into `out` (replacing its contents) as one zstd frame
/// at the mode's level, if that is shorter than `data`; false (and `out`
/// unspecified) for [`CompressionMode::Off`] or data that does not shrink.
/// `out` is a buffer the caller reuses: no allocation once it has grown to
/// the largest input, and none beyond `data.len()` bytes ever, since zstd
/// gives up on output that would not fit.
pub fn compress_smaller(data: &[u8], mode: CompressionMode, out: &mut Vec<u8>) -> bool {
    let Some(level) = mode.level() else {
        return false;
    };
    out.clear();
    out.reserve(data.len());
    match with_compressor(level, |c| c.compress_to_buffer(data, out)) {
        Ok(n) => n < data.len(),
        // Mostly zstd's "destination buffer is too small": the output would
        // not be smaller than the input (every tiny blob). Any other failure
        // is handled the same way, as storing uncompressed is always valid.
        Err(e) => {
            log::trace!("zstd: {e}, storing uncompressed");
            false
        }
    }
}

fn compress_at(data: &[u8], level: i32) -> std::io::Result<Vec<u8>> {
    with_compressor(level, |c| c.compress(data))
}

/// Run `f` with this thread's compressor for `level`.
fn with_compressor<T>(
    level: i32,
    f: impl FnOnce(&mut zstd::bulk::Compressor<'static>) -> std::io::Result<T>,
) -> std::io::Result<T> {
    COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        let compressor = match &mut *slot {
            Some((l, c)) if *l == level => c,
            slot => {
                let mut c = zstd::bulk::Compressor::new(level)?;
                c.set_parameter(CParameter::WindowLog(WINDOW_LOG))?;
                c.set_parameter(CParameter::ChecksumFlag(false))?;
                &mut slot.insert((level, c)).1
            }
        };
        f(compressor)
    })
}

/// Decompress zstd data (zero or more frames) that must expand to at most
/// `max_len` bytes. Truncated, corrupt or oversized input is an
/// [`Error::Corrupt`]; memory use stays within `max_len` plus the decoder's
/// window.
pub fn decompress(data: &[u8], max_len: usize) -> Result<Vec<u8>> {
    if data.is_empty() {
        // No frames at all: nothing (as restic's decoder has it).
        return Ok(Vec::new());
    }
    if let Some(len) = declared_len(data).filter(|&len| len <= max_len.min(ONE_SHOT_LIMIT)) {
        let mut out = Vec::new();
        decompress_into(data, len, &mut out)?;
        return Ok(out);
    }
    with_dctx(|dctx| decompress_with(dctx, data, max_len))
}

/// The content size `data` declares, if it is exactly one zstd frame and
/// its header carries the size (restic's encoder always writes it).
fn declared_len(data: &[u8]) -> Option<usize> {
    if zstd::zstd_safe::find_frame_compressed_size(data).ok()? != data.len() {
        return None;
    }
    usize::try_from(zstd::zstd_safe::get_frame_content_size(data).ok()??).ok()
}

/// Decompress a blob whose plaintext length is known (from the index) into
/// `out`, replacing its contents: `out` ends up exactly `expected` bytes
/// long, or this is an [`Error::Corrupt`]. One call into the reused
/// buffer: zstd never writes past its capacity (`expected`, or more if an
/// earlier, larger blob grew it), so memory is bounded by the caller's
/// `expected`.
pub fn decompress_into(data: &[u8], expected: usize, out: &mut Vec<u8>) -> Result<()> {
    let corrupt = |reason: String| Error::corrupt("compressed data", reason);
    out.clear();
    if !data.is_empty() {
        out.reserve_exact(expected);
        with_dctx(|dctx| {
            let zstd =
                |code: usize| corrupt(format!("zstd: {}", zstd::zstd_safe::get_error_name(code)));
            dctx.reset(ResetDirective::SessionOnly).map_err(zstd)?;
            // The output buffer bounds what a frame can produce; allow
            // any window up to zstd's 64-bit maximum.
            dctx.set_parameter(DParameter::WindowLogMax(31))
                .map_err(zstd)?;
            dctx.decompress(out, data).map_err(zstd)
        })?;
    }
    if out.len() != expected {
        return Err(corrupt(format!(
            "decompressed to {} bytes, expected {expected}",
            out.len()
        )));
    }
    Ok(())
}

/// Run `f` with this thread's decompression context.
fn with_dctx<T>(f: impl FnOnce(&mut DCtx<'static>) -> Result<T>) -> Result<T> {
    DECOMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        let dctx = match &mut *slot {
            Some(dctx) => dctx,
            slot => slot.insert(DCtx::try_create().ok_or_else(|| {
                Error::corrupt("compressed data", "cannot create a zstd context")
            })?),
        };
        f(dctx)
    })
}

thread_local! {
    /// One decompression context per thread, reset for every call.
    static DECOMPRESSOR: RefCell<Option<DCtx<'static>>> = const { RefCell::new(None) };
}

/// [`decompress`] of anything but one frame with a modest declared size:
/// streams into the output vector, growing it (doubling, capped at
/// `max_len`) only as real output arrives, so a large claim is never
/// trusted for allocation.
fn decompress_with(dctx: &mut DCtx<'_>, data: &[u8], max_len: usize) -> Result<Vec<u8>> {
    let corrupt = |reason: String| Error::corrupt("compressed data", reason);
    let zstd = |code: usize| corrupt(format!("zstd: {}", zstd::zstd_safe::get_error_name(code)));
    dctx.reset(ResetDirective::SessionOnly).map_err(zstd)?;
    dctx.set_parameter(DParameter::WindowLogMax(window_log_max(max_len)))
        .map_err(zstd)?;
    let mut input = InBuffer::around(data);
    let mut out: Vec<u8> = Vec::new();
    loop {
        let before = (input.pos(), out.len());
        let frame_done = if out.len() < max_len {
            if out.len() == out.capacity() {
                let room = max_len - out.len();
                out.reserve_exact(CHUNK_LEN.max(out.capacity()).min(room));
            }
            let at = out.len();
            let mut output = OutBuffer::around_pos(&mut out, at);
            dctx.decompress_stream(&mut output, &mut input)
                .map_err(zstd)?
                == 0
        } else {
            // Full: any further byte is one too many.
            let mut probe = [0u8; 1];
            let mut output = OutBuffer::around(&mut probe[..]);
            let hint = dctx
                .decompress_stream(&mut output, &mut input)
                .map_err(zstd)?;
            if output.pos() > 0 {
                return Err(corrupt(format!(
                    "decompresses to more than {max_len} bytes"
                )));
            }
            hint == 0
        };
        if frame_done && input.pos() == data.len() {
            return Ok(out);
        }
        if (input.pos(), out.len()) == before {
            // zstd always moves when it has input and room; standing
            // still means the input ended inside a frame.
            return Err(corrupt("zstd: truncated input".into()));
        }
    }
}

fn window_log_max(max_len: usize) -> u32 {
    let needed = usize::BITS - max_len.saturating_sub(1).leading_zeros();
    needed.clamp(MIN_WINDOW_LOG_MAX, MAX_WINDOW_LOG_MAX)
}

/// The plaintext to encrypt for an unpacked file (not config or key)
/// holding `json`: in a v2 repository the version byte `2` and the zstd
/// stream, as restic writes it whatever the mode (`Off` uses the default
/// level); in v1 the JSON itself.
pub fn encode_unpacked(json: &[u8], repo_version: u32, mode: CompressionMode) -> Vec<u8> {
    if repo_version < 2 {
        return json.to_vec();
    }
    let level = mode.level().unwrap_or(LEVEL_AUTO);
    match compress_at(json, level) {
        Ok(compressed) => {
            let mut out = Vec::with_capacity(1 + compressed.len());
            out.push(UNPACKED_V2);
            out.extend_from_slice(&compressed);
            out
        }
        Err(e) => {
            // Plain JSON is a valid v2 encoding too.
            log::warn!("zstd compression failed, storing uncompressed: {e}");
            json.to_vec()
        }
    }
}

/// The JSON inside a decrypted unpacked file (index, snapshot, lock) of a
/// v1 or v2 repository, at most `max_len` bytes of it.
pub fn decode_unpacked(data: &[u8], max_len: usize) -> Result<Vec<u8>> {
    match data.first() {
        None => Err(Error::corrupt("unpacked file", "empty")),
        Some(b'{' | b'[') => Ok(data.to_vec()),
        Some(&UNPACKED_V2) => decompress(&data[1..], max_len),
        Some(other) => Err(Error::Unsupported {
            what: "unpacked file encoding".into(),
            value: format!("version byte 0x{other:02x}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `data` as one zstd frame at the mode's level (`None` for `Off`).
    fn compress(data: &[u8], mode: CompressionMode) -> Option<Vec<u8>> {
        compress_at(data, mode.level()?).ok()
    }

    fn sample(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| (i % 251) as u8 ^ (i / 1000) as u8)
            .collect()
    }

    #[test]
    fn modes_parse_and_print() {
        for (s, m) in [
            ("auto", CompressionMode::Auto),
            ("off", CompressionMode::Off),
            ("max", CompressionMode::Max),
        ] {
            assert_eq!(s.parse::<CompressionMode>().unwrap(), m);
            assert_eq!(m.to_string(), s);
        }
        assert!("fast".parse::<CompressionMode>().is_err());
        assert!("AUTO".parse::<CompressionMode>().is_err());
        assert_eq!(CompressionMode::default(), CompressionMode::Auto);
        assert_eq!(CompressionMode::Off.level(), None);
    }

    #[test]
    fn round_trips() {
        for len in [0, 1, 100, 512 * 1024 + 7, 3 << 20] {
            let data = sample(len);
            for mode in [CompressionMode::Auto, CompressionMode::Max] {
                let c = compress(&data, mode).unwrap();
                assert_eq!(decompress(&c, len).unwrap(), data, "{len} {mode}");
                assert_eq!(decompress(&c, len + 10).unwrap(), data);
            }
            assert_eq!(compress(&data, CompressionMode::Off), None);
        }
        let text = b"abcabcabc".repeat(10_000);
        let c = compress(&text, CompressionMode::Max).unwrap();
        assert!(c.len() < text.len() / 50);
        // No checksum, like restic: frame header descriptor bit 2 is clear.
        assert_eq!(&c[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
        assert_eq!(c[4] & 0x04, 0);
    }

    #[test]
    fn compress_smaller_reuses_its_buffer_and_gives_up_on_no_gain() {
        let mut out = Vec::new();
        let text = sample(1 << 20);
        assert!(compress_smaller(&text, CompressionMode::Auto, &mut out));
        assert!(out.len() < text.len() / 10);
        assert_eq!(decompress(&out, text.len()).unwrap(), text);
        let capacity = out.capacity();
        // Random bytes do not shrink: no, and the buffer did not grow (zstd
        // stopped at the input's size instead of writing a larger frame).
        let noise = crate::testutil::noise(7, 512 << 10);
        assert!(!compress_smaller(&noise, CompressionMode::Auto, &mut out));
        assert_eq!(out.capacity(), capacity);
        assert!(!compress_smaller(&text, CompressionMode::Off, &mut out));
        // The compressor is fine after the failed frame.
        assert!(compress_smaller(
            &text[..1000],
            CompressionMode::Max,
            &mut out
        ));
        assert_eq!(decompress(&out, 1000).unwrap(), text[..1000]);
    }

    #[test]
    fn concatenated_frames_decode() {
        let mut c = compress(b"hello ", CompressionMode::Auto).unwrap();
        c.extend(compress(b"world", CompressionMode::Auto).unwrap());
        assert_eq!(decompress(&c, 11).unwrap(), b"hello world");
    }

    #[test]
    fn bombs_and_garbage_are_rejected() {
        let bomb = compress(&vec![0u8; 64 << 20], CompressionMode::Auto).unwrap();
        assert!(bomb.len() < 64 << 10);
        let err = decompress(&bomb, 1 << 20).unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "{err}");
        assert!(decompress(&bomb, (64 << 20) - 1).is_err());
        let full = decompress(&bomb, 64 << 20).unwrap();
        assert_eq!(full.len(), 64 << 20);
        assert!(full.capacity() <= 64 << 20, "never more than max_len");
        // A generous limit does not mean a large allocation.
        let small = compress(&sample(1000), CompressionMode::Auto).unwrap();
        assert!(decompress(&small, usize::MAX).unwrap().capacity() <= 64 * 1024);

        let data = sample(100_000);
        let c = compress(&data, CompressionMode::Auto).unwrap();
        assert!(decompress(&c, data.len() - 1).is_err());
        for cut in [1, 4, 10, c.len() / 2, c.len() - 1] {
            assert!(decompress(&c[..cut], data.len()).is_err(), "cut at {cut}");
        }
        let mut flipped = c.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0xff;
        let _ = decompress(&flipped, data.len()); // error or wrong bytes, never a panic
        assert!(decompress(b"not zstd at all", 100).is_err());
        let mut trailing = c;
        trailing.extend_from_slice(b"junk");
        assert!(decompress(&trailing, data.len()).is_err());
        assert_eq!(decompress(&[], 10).unwrap(), b"");
        // The thread's context is reset after every failure.
        assert_eq!(decompress(&small, 1000).unwrap(), sample(1000));
    }

    #[test]
    fn known_length_blobs_decompress_into_a_reused_buffer() {
        let data = sample(100_000);
        let c = compress(&data, CompressionMode::Auto).unwrap();
        let mut out = Vec::new();
        decompress_into(&c, data.len(), &mut out).unwrap();
        assert_eq!(out, data);
        // A claimed length that is wrong either way is an error, also when
        // the reused buffer has room for more.
        assert!(decompress_into(&c, data.len() + 1, &mut out).is_err());
        assert!(decompress_into(&c, data.len() - 1, &mut out).is_err());
        assert!(out.capacity() <= data.len() + 1, "bounded by the claims");
        let bomb = compress(&vec![0u8; 8 << 20], CompressionMode::Auto).unwrap();
        assert!(decompress_into(&bomb, 1000, &mut Vec::new()).is_err());
        assert!(decompress_into(&c[..c.len() / 2], data.len(), &mut out).is_err());
        // No frames: only an empty plaintext.
        decompress_into(&[], 0, &mut out).unwrap();
        assert!(out.is_empty());
        assert!(decompress_into(&[], 5, &mut out).is_err());
        decompress_into(&c, data.len(), &mut out).unwrap();
        assert_eq!(out, data);
    }

    #[test]
    fn a_frame_whose_header_lies_about_its_size_is_refused() {
        // One frame, single segment, a one-byte declared content size,
        // then one last raw block of 100 bytes.
        let frame = |declared: u8| {
            let mut f = vec![0x28, 0xb5, 0x2f, 0xfd, 0x20, declared];
            let header = (100u32 << 3) | 1;
            f.extend_from_slice(&header.to_le_bytes()[..3]);
            f.extend(std::iter::repeat_n(7u8, 100));
            f
        };
        assert_eq!(declared_len(&frame(100)), Some(100));
        assert_eq!(decompress(&frame(100), 1000).unwrap(), vec![7u8; 100]);
        for lie in [99, 101, 0, 255] {
            let err = decompress(&frame(lie), 1000).unwrap_err();
            assert!(matches!(err, Error::Corrupt { .. }), "{lie}: {err}");
        }
        // Two frames are not taken at their first header's word.
        let mut two = frame(100);
        two.extend(frame(100));
        assert_eq!(declared_len(&two), None);
        assert_eq!(decompress(&two, 1000).unwrap(), vec![7u8; 200]);
    }

    #[test]
    fn huge_window_frames_are_refused() {
        // A frame declaring a 1 GiB window and nothing else.
        let mut frame = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, (30 - 10) << 3];
        frame.extend_from_slice(&[0x01, 0x00, 0x00]); // last, raw, empty block
        assert!(decompress(&frame, 1 << 20).is_err());
        assert_eq!(window_log_max(0), MIN_WINDOW_LOG_MAX);
        assert_eq!(window_log_max((1 << 25) + 1), 26);
        assert_eq!(window_log_max(usize::MAX), MAX_WINDOW_LOG_MAX);
    }

    #[test]
    fn unpacked_files() {
        let json = br#"{"packs":[]}"#;
        assert_eq!(encode_unpacked(json, 1, CompressionMode::Auto), json);
        for mode in [
            CompressionMode::Auto,
            CompressionMode::Off,
            CompressionMode::Max,
        ] {
            let v2 = encode_unpacked(json, 2, mode);
            assert_eq!(
                v2[0], 2,
                "restic compresses v2 unpacked files in every mode"
            );
            assert_eq!(decode_unpacked(&v2, 1000).unwrap(), json);
            assert!(decode_unpacked(&v2, 5).is_err());
        }
        assert_eq!(
            decode_unpacked(json, 1).unwrap(),
            json,
            "plain JSON needs no limit"
        );
        assert_eq!(decode_unpacked(b"[1]", 3).unwrap(), b"[1]");
        assert!(matches!(
            decode_unpacked(b"", 10),
            Err(Error::Corrupt { .. })
        ));
        let err = decode_unpacked(b"\x03abc", 10).unwrap_err();
        assert!(err.to_string().contains("0x03"), "{err}");
        assert!(decode_unpacked(b"\x02", 10).unwrap().is_empty());
        assert!(decode_unpacked(b"\x02garbage", 10).is_err());
    }

    #[test]
    fn restic_written_unpacked_file_decodes() {
        // A snapshot file restic 0.14.0 wrote (decrypted): version byte 2,
        // then a klauspost/compress zstd frame.
        let file = hex::decode(concat!(
            "0228b52ffd00006d0400e24a221d802755da02517a5b8f1a66926682e72652c0ca0dd92969",
            "5b28900cec3a098f0802bfde8f216027062f7f075fefc71031410e2f0437c0a488cf158917",
            "8b0fac2787c8122f6f6aa4c319b546554a4e0935a45a52a5daed49e634cc0c6640a635bb63",
            "8f64d60ee3a37a93557ebd1bc6970b24dd63748d0540bacc592703560b990556a35fef5710",
            "8f1000"
        ))
        .unwrap();
        let json = br#"{"time":"2026-11-23T14:40:25.393204327Z","tree":"18613e846a4da61b3bf6ed05ca9a60166143fe8827d85d577617820380fb792d","paths":["/tmp/fmt/src"],"hostname":"vm","username":"root"}"#;
        assert_eq!(decode_unpacked(&file, json.len()).unwrap(), json);
        assert!(decode_unpacked(&file, json.len() - 1).is_err());
    }
}
