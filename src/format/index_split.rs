//! Parsing one large index file on several threads.
//!
//! restic writes an index file as `{"packs":[…]}`, or after a prune as
//! `{"supersedes":[…],"packs":[…]}`, compact. A large repository's index
//! files hold tens of megabytes of JSON, and parsing them was the longest
//! step of opening a repository that ran on one core. Between two packs the
//! text always reads `]},{` (a pack's blob list closes, then the pack), so
//! the packs array is cut at such commas near equal fractions of its length
//! and each piece, bracketed as an array of its own, is parsed on a thread
//! of its own.
//!
//! Why a wrong cut cannot give a wrong result: JSON is parsed left to right
//! without lookahead, and every piece starts where the array or a pack
//! starts, so each piece parses exactly as that stretch of the whole array
//! would, up to the comma it ends at. Were that comma inside a string or a
//! nested value, the piece would end mid-value and fail to parse. So when
//! every piece parses, every cut lay between two packs and the pieces'
//! packs, in order, are the array's. Any failure, or a file of another
//! shape, leaves the file to one serial parse, which gives exactly the
//! answer (or the error) it always gave.

use std::thread;

use super::index::{IndexFile, IndexPack};
use crate::id::IndexId;

/// A packs array shorter than this is parsed on one thread.
const MIN_PARALLEL: usize = 1 << 20;

/// No piece is made shorter than this.
const MIN_PIECE: usize = 256 << 10;

/// What separates two packs in restic's compact JSON; the cut is at the
/// comma.
const BETWEEN_PACKS: &[u8] = b"]},{";

/// `data` parsed on up to `threads` threads, or `None` if it is too small,
/// not in restic's compact shape, or any piece fails to parse (the caller
/// then parses it whole).
pub(super) fn parse(data: &[u8], threads: usize) -> Option<IndexFile> {
    let (supersedes, array) = split_top(data)?;
    let pieces = threads.min(array.len() / MIN_PIECE);
    if array.len() < MIN_PARALLEL || pieces < 2 {
        return None;
    }
    let cuts = cuts(array, pieces);
    if cuts.is_empty() {
        return None;
    }
    let parsed: Vec<Option<Vec<IndexPack>>> = thread::scope(|scope| {
        let workers: Vec<_> = (0..=cuts.len())
            .map(|i| {
                // Piece i runs from the array's start or just after cut
                // i - 1 to cut i or the array's end.
                let start = if i == 0 { 0 } else { cuts[i - 1] + 1 };
                let end = cuts.get(i).copied().unwrap_or(array.len());
                let piece = &array[start..end];
                let (open, close) = (i > 0, i < cuts.len());
                let parse = move || parse_piece(piece, open, close);
                // No thread to be had: parse it here, after the others
                // started.
                thread::Builder::new()
                    .spawn_scoped(scope, parse)
                    .map_err(|_| parse)
            })
            .collect();
        workers
            .into_iter()
            .map(|w| match w {
                Ok(thread) => thread.join().ok().flatten(),
                Err(parse) => parse(),
            })
            .collect()
    });
    let mut packs = Vec::new();
    for piece in parsed {
        packs.extend(piece?);
    }
    Some(IndexFile { supersedes, packs })
}

/// `{"packs":ARRAY}` or `{"supersedes":LIST,"packs":ARRAY}` (then JSON
/// whitespace): the superseded ids and the text of ARRAY, which starts with
/// `[` and (if the file is well formed) ends with `]`.
fn split_top(data: &[u8]) -> Option<(Vec<IndexId>, &[u8])> {
    const PACKS_FIRST: &[u8] = b"{\"packs\":";
    const SUPERSEDES_FIRST: &[u8] = b"{\"supersedes\":";
    const THEN_PACKS: &[u8] = b",\"packs\":[";
    let end = data
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))?;
    let inner = data.get(..end).filter(|_| data[end] == b'}')?;
    if let Some(array) = inner.strip_prefix(PACKS_FIRST) {
        return array.starts_with(b"[").then_some((Vec::new(), array));
    }
    let rest = inner.strip_prefix(SUPERSEDES_FIRST)?;
    let at = find(rest, THEN_PACKS, 0)?;
    // The list must be exactly one JSON value: were the match inside it,
    // it would end mid-value and fail here.
    let supersedes = serde_json::from_slice(&rest[..at]).ok()?;
    Some((supersedes, &rest[at + THEN_PACKS.len() - 1..]))
}

/// Up to `pieces - 1` cut positions (commas between two packs), increasing,
/// each at or after its share of the array.
fn cuts(array: &[u8], pieces: usize) -> Vec<usize> {
    let mut cuts: Vec<usize> = Vec::with_capacity(pieces - 1);
    for i in 1..pieces {
        let from = (array.len() / pieces * i).max(cuts.last().map_or(0, |c| c + 1));
        match find(array, BETWEEN_PACKS, from) {
            // The comma is the pattern's third byte.
            Some(at) => cuts.push(at + 2),
            None => break,
        }
    }
    cuts
}

/// The first position at or after `from` where `needle` occurs.
fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|at| from + at)
}

/// Parse the packs of one piece, bracketing it as an array first: `open`
/// if it lacks its `[` (it starts after a cut), `close` if it lacks its `]`
/// (it ends at one).
fn parse_piece(piece: &[u8], open: bool, close: bool) -> Option<Vec<IndexPack>> {
    let mut text = Vec::with_capacity(piece.len() + 2);
    if open {
        text.push(b'[');
    }
    text.extend_from_slice(piece);
    if close {
        text.push(b']');
    }
    serde_json::from_slice(&text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blob::BlobType;
    use crate::format::index::IndexBlob;
    use crate::id::{BlobId, Id, PackId};

    fn id(n: u64, salt: u8) -> Id {
        let mut bytes = [salt; 32];
        bytes[..8].copy_from_slice(&n.to_be_bytes());
        Id(bytes)
    }

    /// An index file with `packs` packs of `blobs` blobs each.
    fn sample(packs: u64, blobs: u64, supersedes: usize) -> IndexFile {
        IndexFile {
            supersedes: (0..supersedes as u64).map(|n| IndexId(id(n, 9))).collect(),
            packs: (0..packs)
                .map(|p| IndexPack {
                    id: PackId(id(p, 1)),
                    blobs: (0..blobs)
                        .map(|b| IndexBlob {
                            id: BlobId(id(p * blobs + b, 2)),
                            tpe: if b % 7 == 0 {
                                BlobType::Tree
                            } else {
                                BlobType::Data
                            },
                            offset: (b * 1000) as u32,
                            length: 1000,
                            uncompressed_length: (b % 2 == 0).then_some(1500),
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    #[test]
    fn large_files_parse_in_pieces_to_what_one_parse_gives() {
        for supersedes in [0, 3] {
            let file = sample(400, 40, supersedes);
            let json = file.to_json();
            assert!(json.len() > 2 * MIN_PARALLEL, "{}", json.len());
            for threads in [2, 3, 8] {
                let cut = parse(&json, threads).expect("restic's shape parses in pieces");
                assert_eq!(cut, file, "{threads} threads, {supersedes} superseded");
            }
            assert_eq!(IndexFile::from_json(&json).unwrap(), file);
        }
    }

    #[test]
    fn other_shapes_and_small_files_are_left_to_one_parse() {
        let file = sample(400, 40, 0);
        let json = file.to_json();
        // Too small, or one thread.
        assert!(parse(&sample(3, 3, 0).to_json(), 8).is_none());
        assert!(parse(&json, 1).is_none());
        // Pretty-printed, the old bare-array format, another key after the
        // packs, a trailing comma, and cut short.
        let pretty = serde_json::to_vec_pretty(&file).unwrap();
        let bare = serde_json::to_vec(&file.packs).unwrap();
        let mut extra = json.clone();
        let close = extra.iter().rposition(|&b| b == b'}').unwrap();
        extra.splice(close..close, *b",\"x\":[1]");
        let mut trailing = json.clone();
        let close = trailing.iter().rposition(|&b| b == b']').unwrap();
        trailing.insert(close, b',');
        let short = &json[..json.len() - 10];
        for bad in [&pretty[..], &bare, &extra, &trailing, short] {
            assert!(parse(bad, 4).is_none());
        }
    }

    #[test]
    fn a_separator_inside_a_string_cannot_fool_the_cuts() {
        // Unknown fields are allowed and ignored: give the first pack a
        // string of separators longer than the rest of the file, so that
        // the first cut lands inside it.
        let file = sample(400, 40, 0);
        let json = String::from_utf8(file.to_json()).unwrap();
        let noise = "]},{".repeat(json.len() / 2);
        let hostile = json.replacen("{\"id\"", &format!("{{\"note\":\"{noise}\",\"id\""), 1);
        assert_eq!(parse(hostile.as_bytes(), 4), None);
        // Whole, it parses to the same packs.
        assert_eq!(IndexFile::from_json(hostile.as_bytes()).unwrap(), file);
    }
}
