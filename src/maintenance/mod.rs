//! Maintenance of a repository as a whole, as opposed to the snapshot-level
//! engines ([`archiver`](crate::archiver), [`restorer`](crate::restorer)).
//!
//! - [`check`]: verify the repository's integrity, read-only.
//!
//! Every operation here separates finding out what is wrong (or what to do)
//! from changing anything; `check` never writes to the repository at all.

pub mod check;
