//! Pack files: many encrypted blobs followed by an encrypted header listing
//! them, byte-compatible with restic.
//!
//! Layout of a pack (restic `doc/design.rst`, "Pack Format"):
//!
//! ```text
//! [blob 0][blob 1]…[blob n-1][encrypted header][header length: u32 LE]
//! ```
//!
//! - Each blob is encrypted on its own (IV ‖ ciphertext ‖ MAC), optionally
//!   zstd-compressed before encryption, and the blobs lie back to back from
//!   offset 0 in header order.
//! - The header ([`header`]) is encrypted as a whole; the last four bytes of
//!   the file give the length of the *encrypted* header.
//! - A pack's id is the SHA-256 of the whole file; a blob's id is the SHA-256
//!   of its plaintext.
//!
//! [`PackWriter`] assembles packs (in memory, or streamed to the backend
//! through a [`PackUpload`]); [`read_header`] and [`decode_blob`] read
//! them, treating every byte of the file as untrusted.

pub mod header;
pub mod reader;
pub mod writer;

#[cfg(test)]
mod compat_tests;

pub use header::{decode_header, encode_header, PackBlob};
pub use reader::{decode_blob, read_header};
pub use writer::{FinishedPack, PackSink, PackUpload, PackWriter};

/// Size of the header-length field at the end of a pack.
pub const HEADER_LENGTH_SIZE: usize = 4;

/// Largest encrypted header accepted (restic's limit: 16 MiB).
pub const MAX_HEADER_SIZE: usize = 16 << 20;

/// Most blobs one pack can hold so that its header stays within
/// [`MAX_HEADER_SIZE`] even if every entry is a compressed one.
pub const MAX_HEADER_ENTRIES: usize =
    (MAX_HEADER_SIZE - crate::crypto::CIPHERTEXT_OVERHEAD) / header::COMPRESSED_ENTRY_SIZE;

/// Largest blob plaintext accepted when reading (1 GiB).
///
/// Data blobs are chunks of at most a few MiB (restic's chunker stops at
/// 8 MiB), but a tree blob is the JSON of a whole directory and grows with
/// the number of entries: a directory of a million files gives a tree of a
/// few hundred MiB. The cap only exists so that a corrupt or hostile length
/// cannot make a reader allocate gigabytes.
pub const MAX_BLOB_SIZE: u32 = 1 << 30;
