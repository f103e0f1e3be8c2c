//! Serde types of the on-disk JSON files and blobs, nothing else: they
//! (de)serialize exactly as restic writes them, and tolerate unknown fields.

pub mod config;
mod gojson;
pub mod index;
pub mod key;
pub mod lock;
pub mod snapshot;
pub mod time;
pub mod tree;

pub use config::Config;
pub use index::{IndexBlob, IndexFile, IndexPack};
pub use lock::LockFile;
pub use snapshot::{Snapshot, SnapshotSummary};
pub use time::GoTime;
pub use tree::{ExtendedAttribute, Node, NodeType, Tree};
