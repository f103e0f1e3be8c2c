//! What `check` reports: one [`Finding`] per problem, each printing as a
//! single line that names the index file, pack, snapshot, tree or blob
//! concerned.
//!
//! Findings are either *errors* (the repository is damaged: data may be
//! lost) or *hints* (harmless untidiness that `prune` or `rebuild-index`
//! would clean up), as restic 0.14 classifies them; see
//! [`Finding::is_error`].

use std::fmt;

use crate::blob::BlobHandle;
use crate::error::Error;
use crate::id::{Id, IndexId, PackId, SnapshotId, TreeId};

/// One problem found by `check`.
#[derive(Debug)]
#[non_exhaustive]
pub enum Finding {
    // ---- hints ------------------------------------------------------------
    /// An index file in the pre-0.8 format (a bare array of packs).
    OldIndexFormat { index: IndexId },
    /// A pack listed by more than one index file.
    DuplicatePack { pack: PackId, indexes: Vec<IndexId> },
    /// A pack holding both tree and data blobs (restic keeps them apart).
    MixedPack { pack: PackId },
    /// A pack file that no index lists: its blobs are unused (e.g. left by
    /// an interrupted backup).
    UnreferencedPack { pack: PackId },
    /// A blob the index lists but no snapshot references (only reported
    /// when asked for).
    UnusedBlob { blob: BlobHandle },

    // ---- errors -----------------------------------------------------------
    /// An index file that cannot be read, decrypted or parsed.
    IndexUnreadable { index: IndexId, error: Error },
    /// A pack listed by the index but absent from the repository.
    PackMissing { pack: PackId },
    /// A pack whose file size differs from the size implied by its index
    /// entries (the blobs, the header entries and the header overhead).
    PackSizeMismatch {
        pack: PackId,
        expected: u64,
        actual: u64,
    },
    /// A snapshot file that cannot be read, decrypted or parsed.
    SnapshotUnreadable { snapshot: SnapshotId, error: Error },
    /// A tree that cannot be loaded: not in the index, unreadable, or not
    /// a valid tree.
    TreeUnreadable { tree: TreeId, error: Error },
    /// A tree that loads but whose content is inconsistent.
    Tree { tree: TreeId, problem: TreeProblem },
    /// A problem found while reading a pack completely (`--read-data`).
    Pack { pack: PackId, problem: PackProblem },
}

impl Finding {
    /// True if the finding means the repository is damaged; false for the
    /// informational hints.
    pub fn is_error(&self) -> bool {
        !matches!(
            self,
            Finding::OldIndexFormat { .. }
                | Finding::DuplicatePack { .. }
                | Finding::MixedPack { .. }
                | Finding::UnreferencedPack { .. }
                | Finding::UnusedBlob { .. }
        )
    }
}

/// An inconsistency inside one tree, as restic's checker defines them.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TreeProblem {
    /// A file node whose `content` is `null`.
    FileWithoutContent { name: String },
    /// A file node listing the all-zero blob id.
    NullBlob { name: String, index: usize },
    /// A file node listing a data blob the index does not know.
    BlobNotInIndex {
        name: String,
        blob: crate::id::BlobId,
    },
    /// A directory node without a subtree.
    DirWithoutSubtree { name: String },
    /// A directory node whose subtree is the all-zero id.
    NullSubtree { name: String },
    /// A node of a type restic does not know.
    InvalidType { name: String, node_type: String },
    /// A node with an empty name.
    EmptyName,
}

impl fmt::Display for TreeProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TreeProblem::FileWithoutContent { name } => {
                write!(f, "file {name:?} has nil blob list")
            }
            TreeProblem::NullBlob { name, index } => {
                write!(f, "file {name:?} blob {index} has null ID")
            }
            TreeProblem::BlobNotInIndex { name, blob } => {
                write!(f, "file {name:?} blob {blob} not found in index")
            }
            TreeProblem::DirWithoutSubtree { name } => {
                write!(f, "dir node {name:?} has no subtree")
            }
            TreeProblem::NullSubtree { name } => write!(f, "dir node {name:?} subtree id is null"),
            TreeProblem::InvalidType { name, node_type } => {
                write!(f, "node {name:?} with invalid type {node_type:?}")
            }
            TreeProblem::EmptyName => f.write_str("node with empty name"),
        }
    }
}

/// A problem with one pack found by reading it completely.
#[derive(Debug)]
#[non_exhaustive]
pub enum PackProblem {
    /// Reading the file failed; the rest of it was not checked.
    Unreadable(Error),
    /// The SHA-256 of the file is not its name.
    HashMismatch { actual: Id },
    /// The index lists blobs of this pack with gaps or overlaps between
    /// them (restic writes blobs back to back from offset 0).
    IndexNotContiguous,
    /// The index places a blob (partly) beyond the end of the file.
    BlobBeyondEnd {
        blob: BlobHandle,
        end: u64,
        size: u64,
    },
    /// A blob does not decrypt, decompress or hash to its id.
    Blob { blob: BlobHandle, error: Error },
    /// The pack header cannot be read, authenticated or parsed.
    HeaderUnreadable(Error),
    /// The pack header lists a blob the index does not have at that place.
    HeaderBlobNotInIndex { blob: BlobHandle, offset: u32 },
    /// The index lists a blob in this pack that the header does not.
    IndexBlobNotInHeader { blob: BlobHandle, offset: u32 },
}

impl PackProblem {
    fn fmt_for(&self, pack: &PackId, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PackProblem::Unreadable(e) => {
                write!(f, "pack {pack}: failed to download: ")?;
                fmt_error(f, None, pack.id(), e)
            }
            PackProblem::HashMismatch { actual } => write!(
                f,
                "pack {pack}: Pack ID does not match, want {pack}, got {actual}"
            ),
            PackProblem::IndexNotContiguous => write!(
                f,
                "pack {pack}: index for pack contains gaps / overlapping blobs"
            ),
            PackProblem::BlobBeyondEnd { blob, end, size } => write!(
                f,
                "pack {pack}: {blob} ends at offset {end}, beyond the end of the file ({size} bytes)"
            ),
            PackProblem::Blob { blob, error } => {
                fmt_error(f, Some(&format!("pack {pack}: {blob}")), pack.id(), error)
            }
            PackProblem::HeaderUnreadable(e) => {
                fmt_error(f, Some(&format!("pack {pack} header")), pack.id(), e)
            }
            PackProblem::HeaderBlobNotInIndex { blob, offset } => write!(
                f,
                "pack {pack}: {blob} at offset {offset} is not contained in index or position is incorrect"
            ),
            PackProblem::IndexBlobNotInHeader { blob, offset } => write!(
                f,
                "pack {pack}: {blob} at offset {offset} is listed in the index but not in the pack header"
            ),
        }
    }
}

/// Write `error`, prefixed by `subject` unless the error's own message
/// already names the object (core errors usually do, e.g. "snapshot <id>:
/// …"), so that no line says the same thing twice.
fn fmt_error(
    f: &mut fmt::Formatter<'_>,
    subject: Option<&str>,
    id: &Id,
    error: &Error,
) -> fmt::Result {
    let message = error.to_string();
    match subject {
        Some(subject) if !message.contains(&id.to_hex()) => write!(f, "{subject}: {message}"),
        _ => f.write_str(&message),
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::OldIndexFormat { index } => write!(f, "index {index} has old format"),
            Finding::DuplicatePack { pack, indexes } => {
                write!(f, "pack {pack} contained in several indexes: ")?;
                for (i, index) in indexes.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    write!(f, "{sep}{}", index.short())?;
                }
                Ok(())
            }
            Finding::MixedPack { pack } => {
                write!(
                    f,
                    "pack {} contains a mix of tree and data blobs",
                    pack.short()
                )
            }
            Finding::UnreferencedPack { pack } => {
                write!(f, "pack {pack}: not referenced in any index")
            }
            Finding::UnusedBlob { blob } => write!(f, "unused {blob}"),
            Finding::IndexUnreadable { index, error } => {
                write!(f, "error loading index {}: ", index.short())?;
                fmt_error(f, None, index.id(), error)
            }
            Finding::PackMissing { pack } => write!(f, "pack {pack}: does not exist"),
            Finding::PackSizeMismatch {
                pack,
                expected,
                actual,
            } => write!(
                f,
                "pack {pack}: unexpected file size: got {actual}, expected {expected}"
            ),
            Finding::SnapshotUnreadable { snapshot, error } => fmt_error(
                f,
                Some(&format!("snapshot {snapshot}")),
                snapshot.id(),
                error,
            ),
            Finding::TreeUnreadable { tree, error } => {
                fmt_error(f, Some(&format!("tree {tree}")), tree.id(), error)
            }
            Finding::Tree { tree, problem } => write!(f, "tree {tree}: {problem}"),
            Finding::Pack { pack, problem } => problem.fmt_for(pack, f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blob::BlobType;
    use crate::id::BlobId;

    #[test]
    fn lines_name_the_object_once() {
        let pack = PackId(Id::hash(b"p"));
        let blob = BlobHandle::new(BlobType::Data, BlobId(Id::hash(b"b")));
        let finding = Finding::Pack {
            pack,
            problem: PackProblem::Blob {
                blob,
                error: Error::MacMismatch(format!("{blob} in pack {pack}")),
            },
        };
        let line = finding.to_string();
        assert_eq!(line.matches(&pack.to_hex()).count(), 1, "{line}");
        assert!(line.contains("MAC mismatch"), "{line}");

        let snapshot = SnapshotId(Id::hash(b"s"));
        let finding = Finding::SnapshotUnreadable {
            snapshot,
            error: Error::NotFound("the file".into()),
        };
        assert_eq!(
            finding.to_string(),
            format!("snapshot {snapshot}: the file does not exist")
        );
        assert!(finding.is_error());
        assert!(!Finding::UnreferencedPack { pack }.is_error());
        assert_eq!(
            Finding::Tree {
                tree: TreeId(Id::hash(b"t")),
                problem: TreeProblem::DirWithoutSubtree { name: "d".into() }
            }
            .to_string(),
            format!("tree {}: dir node \"d\" has no subtree", Id::hash(b"t"))
        );
    }
}
