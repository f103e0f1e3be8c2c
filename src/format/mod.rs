//! Serde types of the on-disk JSON files and blobs, nothing else: they
//! (de)serialize exactly as restic writes them, and tolerate unknown fields.

pub mod config;
pub mod index;
pub mod key;
pub mod lock;
pub mod snapshot;
pub mod time;
pub mod tree;
