//! Blobs: the unit of deduplicated storage. A blob is either file content
//! (`data`) or a serialized directory (`tree`), identified by the SHA-256 of
//! its plaintext.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::id::BlobId;

/// The two kinds of blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlobType {
    /// File content.
    Data,
    /// A serialized [`Tree`](crate::format::tree::Tree).
    Tree,
}

impl BlobType {
    /// `"data"` or `"tree"`, as in index files and restic's output.
    pub fn name(self) -> &'static str {
        match self {
            BlobType::Data => "data",
            BlobType::Tree => "tree",
        }
    }
}

impl fmt::Display for BlobType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A blob's identity: its type and id. The same id may exist as both types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobHandle {
    pub tpe: BlobType,
    pub id: BlobId,
}

impl BlobHandle {
    pub fn new(tpe: BlobType, id: BlobId) -> Self {
        BlobHandle { tpe, id }
    }
}

impl fmt::Display for BlobHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} blob {}", self.tpe, self.id)
    }
}
