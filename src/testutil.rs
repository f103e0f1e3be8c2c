//! Helpers shared by the unit tests: repositories on an in-memory backend
//! (with a cheap key derivation), incompressible test data, tree nodes
//! for snapshots built by hand, and blobs as a pack stores them.

use std::sync::Arc;

use crate::backend::{Backend, FileInfo, FileType, MemBackend};
use crate::blob::BlobType;
use crate::crypto::kdf::KdfParams;
use crate::crypto::MasterKey;
use crate::format::tree::{Node, NodeType, Tree};
use crate::id::{BlobId, Id};
use crate::pack::PackBlob;
use crate::repository::{InitOptions, Repository};

/// A new repository of format `version` (1 or 2) on `backend`, password
/// `pw`.
pub(crate) fn repo_on(backend: Arc<dyn Backend>, version: u32) -> Repository {
    let opts = InitOptions {
        version,
        kdf: KdfParams::insecure_fast(),
        ..InitOptions::default()
    };
    Repository::init(backend, b"pw", &opts).expect("init a memory repository")
}

/// A new repository of format `version` in memory, and its backend.
pub(crate) fn mem_repo(version: u32) -> (Arc<MemBackend>, Repository) {
    let mem = Arc::new(MemBackend::new());
    let repo = repo_on(mem.clone(), version);
    (mem, repo)
}

/// `len` incompressible bytes, different for every seed.
pub(crate) fn noise(seed: u32, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    let mut block = Id::hash(&seed.to_le_bytes());
    while out.len() < len {
        out.extend_from_slice(&block.0);
        block = Id::hash(&block.0);
    }
    out.truncate(len);
    out
}

/// A file node whose content is `chunks`, one data blob each (saved in
/// `repo`), with its size; every other field is left at its default.
pub(crate) fn file_node(repo: &Repository, name: &str, chunks: &[&[u8]]) -> Node {
    let mut node = Node::new(name, NodeType::File);
    node.content = Some(
        chunks
            .iter()
            .map(|c| repo.save_blob(BlobType::Data, c).expect("save a blob").0)
            .collect(),
    );
    node.size = chunks.iter().map(|c| c.len() as u64).sum();
    node
}

/// A directory node whose subtree holds `nodes` as given (neither sorted
/// nor checked, so hostile trees can be built too); every other field is
/// left at its default.
pub(crate) fn dir_node(repo: &Repository, name: &str, nodes: Vec<Node>) -> Node {
    let mut node = Node::new(name, NodeType::Dir);
    node.subtree = Some(repo.save_tree(&Tree { nodes }).expect("save a tree"));
    node
}

/// A data blob as a pack stores it: its header entry (at offset 0) and its
/// encrypted bytes, zstd-compressed first if `compress`.
pub(crate) fn stored_blob(key: &MasterKey, plain: &[u8], compress: bool) -> (PackBlob, Vec<u8>) {
    let (body, uncompressed_length) = if compress {
        (
            zstd::bulk::compress(plain, 3).unwrap(),
            Some(plain.len() as u32),
        )
    } else {
        (plain.to_vec(), None)
    };
    let encrypted = key.encrypt(&body);
    let blob = PackBlob {
        tpe: BlobType::Data,
        id: BlobId(Id::hash(plain)),
        offset: 0,
        length: encrypted.len() as u32,
        uncompressed_length,
    };
    (blob, encrypted)
}

/// A memory backend that calls `hook` with a pack's name before storing
/// it; an error from the hook fails that write (and stores nothing). For
/// tests that need a failing disk or an event at a fixed point of a backup.
pub(crate) struct PackHook<F> {
    pub mem: Arc<MemBackend>,
    pub hook: F,
}

impl<F: Fn(&str) -> crate::Result<()> + Send + Sync> Backend for PackHook<F> {
    fn location(&self) -> String {
        self.mem.location()
    }
    fn create(&self) -> crate::Result<()> {
        self.mem.create()
    }
    fn list(&self, tpe: FileType) -> crate::Result<Vec<FileInfo>> {
        self.mem.list(tpe)
    }
    fn read(&self, tpe: FileType, name: &str) -> crate::Result<Vec<u8>> {
        self.mem.read(tpe, name)
    }
    fn read_range(
        &self,
        tpe: FileType,
        name: &str,
        offset: u64,
        length: u64,
    ) -> crate::Result<Vec<u8>> {
        self.mem.read_range(tpe, name, offset, length)
    }
    fn write(&self, tpe: FileType, name: &str, data: &[u8]) -> crate::Result<()> {
        if tpe == FileType::Pack {
            (self.hook)(name)?;
        }
        self.mem.write(tpe, name, data)
    }
    fn remove(&self, tpe: FileType, name: &str) -> crate::Result<()> {
        self.mem.remove(tpe, name)
    }
    fn stat(&self, tpe: FileType, name: &str) -> crate::Result<u64> {
        self.mem.stat(tpe, name)
    }
}
