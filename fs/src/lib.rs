//! `cairn-fs`: the FUSE read layer that shows every snapshot of a repository
//! as a read-only directory tree. (Built out by the mount issue.)
