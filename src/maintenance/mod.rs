//! Maintenance of a repository as a whole, as opposed to the snapshot-level
//! engines ([`archiver`](crate::archiver), [`restorer`](crate::restorer)).
//!
//! - [`check`]: verify the repository's integrity, read-only.
//! - [`forget`]: which snapshots a `--keep-*` policy keeps (pure).
//! - [`prune`]: remove unneeded data, crash-safely.
//! - [`repair`]: rebuild the index, salvage packs, repair snapshots.
//! - [`rewrite`]: rewrite snapshot trees (excludes, repairs).
//! - [`copy`]: copy snapshots between repositories.
//! - [`used`]: the blobs snapshots still need.
//!
//! Every operation here separates finding out what is wrong (or what to do)
//! from changing anything; `check` never writes to the repository at all.
//! Operations that change the repository write new files before they remove
//! old ones, so that a crash never loses data a snapshot needs.

pub mod check;
pub mod copy;
pub mod forget;
mod pack_sink;
pub(crate) mod parallel;
pub mod prune;
pub mod repair;
pub mod rewrite;
pub mod used;
