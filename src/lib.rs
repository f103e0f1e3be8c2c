//! `cairn-core`: a restic-compatible backup repository.
//!
//! Layers, bottom up:
//! - [`id`]: SHA-256 ids and their typed newtypes.
//! - [`crypto`]: AES-256-CTR + Poly1305-AES and scrypt key files, as restic.
//! - [`chunker`]: content-defined chunking (restic's Rabin, and FastCDC).
//! - [`format`]: serde types of the on-disk JSON (config, keys, snapshots,
//!   trees, index files) and [`compression`] of v2 files and blobs.
//! - [`pack`]: pack files (blobs + encrypted header).
//! - [`backend`]: where files live (local directory, memory).
//! - [`index`]: which pack holds which blob.
//! - [`repository`]: all of the above behind one handle: open/init, keys,
//!   locks, loading and saving blobs and files.
//! - [`tree`]: walking snapshot trees; selecting snapshots.
//! - [`archiver`] (backup) and [`restorer`] (restore): the engines.

pub mod archiver;
pub mod backend;
pub mod blob;
pub mod chunker;
pub mod compression;
pub mod crypto;
pub mod decode;
pub mod diff;
pub mod dump;
pub mod error;
pub mod filter;
pub mod find;
pub mod format;
pub mod id;
pub mod index;
pub mod maintenance;
pub mod pack;
pub mod repository;
pub mod restorer;
pub mod stats;
#[cfg(test)]
pub(crate) mod testutil;
pub mod tree;

pub use blob::{BlobHandle, BlobType};
pub use error::{Error, Result};
pub use id::{BlobId, Id, IndexId, KeyId, LockId, PackId, SnapshotId, TreeId};
