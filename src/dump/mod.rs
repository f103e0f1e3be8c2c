//! `dump`: stream one file of a snapshot, or a directory as a tar or zip
//! archive, to any writer (a pipe included: nothing is seeked).
//!
//! Entries are produced depth first, parents before children, in tree
//! order, as restic does: regular files, directories and symlinks, named by
//! their path below the snapshot root without the leading `/` (directories
//! end in `/`). The dumped directory itself is not an entry, only what is
//! in it.
//!
//! A repository is untrusted input, and archives get extracted: a node name
//! that is empty, `.`, `..` or contains `/` or NUL, and a second node of
//! the same name in one directory, are skipped with a [`Problem`], so every
//! archive path is a clean relative path. Content is read blob by blob
//! through [`Repository::load_blob`] (MAC, length and hash checked); a blob
//! that fails is never written as data: its range is written as zeros (the
//! archive header already announced the size) and the file is reported.
//! Sizes come from the index, not from the node, so headers and data agree.
//! Memory: one blob at a time.

mod tar;
mod zip;

use std::collections::HashSet;
use std::ffi::OsString;
use std::io::{self, Read, Write};

use crate::blob::{BlobHandle, BlobType};
use crate::error::{Error, Result};
use crate::format::tree::{Node, NodeType};
use crate::id::{BlobId, TreeId};
use crate::repository::Repository;
use crate::restorer::Problem;
use crate::tree::{check_name, MAX_DEPTH};

/// Archive formats (`--archive`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Tar,
    Zip,
}

impl std::str::FromStr for Format {
    type Err = Error;

    fn from_str(s: &str) -> Result<Format> {
        match s {
            "tar" => Ok(Format::Tar),
            "zip" => Ok(Format::Zip),
            _ => Err(Error::InvalidArgument(format!(
                "unknown archive format {s:?}"
            ))),
        }
    }
}

/// What a dump wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DumpStats {
    /// Archive entries written.
    pub entries: u64,
    /// File content bytes written (zeros for bad blobs included).
    pub bytes: u64,
    /// Problems reported (skipped entries, bad blobs).
    pub problems: u64,
}

/// The blobs of a file and their lengths from the index; `Err` names the
/// first blob the index does not know.
fn file_blobs(repo: &Repository, node: &Node) -> std::result::Result<Vec<(BlobId, u32)>, String> {
    node.content()
        .iter()
        .map(|id| {
            repo.lookup(&BlobHandle::new(BlobType::Data, *id))
                .map(|e| (*id, e.plaintext_len()))
                .ok_or_else(|| format!("data blob {} is not in the index", id.short()))
        })
        .collect()
}

/// Write one file's content to `out`. Stops at the first blob that cannot
/// be loaded or verified (nothing of it is written).
pub fn dump_file(repo: &Repository, node: &Node, out: &mut dyn Write) -> Result<u64> {
    let mut written = 0u64;
    for id in node.content() {
        let data = repo.load_blob(BlobType::Data, id)?;
        out.write_all(&data)
            .map_err(|e| Error::io("writing the output", e))?;
        written += data.len() as u64;
    }
    out.flush()
        .map_err(|e| Error::io("writing the output", e))?;
    Ok(written)
}

/// Reads a file's content blob by blob; a blob that fails reads as zeros
/// of its indexed length and is remembered.
pub(crate) struct ContentReader<'a> {
    repo: &'a Repository,
    blobs: std::vec::IntoIter<(BlobId, u32)>,
    current: Vec<u8>,
    pos: usize,
    /// The first failure, if any.
    pub failure: Option<String>,
}

impl<'a> ContentReader<'a> {
    fn new(repo: &'a Repository, blobs: Vec<(BlobId, u32)>) -> Self {
        ContentReader {
            repo,
            blobs: blobs.into_iter(),
            current: Vec::new(),
            pos: 0,
            failure: None,
        }
    }
}

impl Read for ContentReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            let Some((id, length)) = self.blobs.next() else {
                return Ok(0);
            };
            self.pos = 0;
            self.current = match self.repo.load_blob(BlobType::Data, &id) {
                Ok(data) => data,
                Err(e) => {
                    self.failure.get_or_insert_with(|| e.to_string());
                    vec![0; length as usize]
                }
            };
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// One archive entry.
pub(crate) struct Entry<'a> {
    /// Relative path, `/`-separated, without a trailing `/`.
    pub path: String,
    pub node: &'a Node,
    /// For files: the blobs and their lengths.
    pub blobs: Vec<(BlobId, u32)>,
}

impl Entry<'_> {
    /// The content size: the sum of the blob lengths.
    pub fn size(&self) -> u64 {
        self.blobs.iter().map(|(_, n)| u64::from(*n)).sum()
    }
}

/// An archive being written.
pub(crate) trait ArchiveWriter {
    /// Add an entry; a file's content is read from `content`.
    fn add(&mut self, entry: &Entry<'_>, content: &mut dyn Read) -> io::Result<()>;
    /// Write the end of the archive.
    fn finish(&mut self) -> io::Result<()>;
}

/// Dump everything below the tree `root` as an archive. `prefix` is the
/// path of that tree in the snapshot (`""` or `"/"` for the root; e.g.
/// `"/home/ann"` names entries `home/ann/…`). Problems with single entries
/// go to `report`; errors writing `out` stop the dump.
pub fn dump_tree<W: Write>(
    repo: &Repository,
    root: &TreeId,
    prefix: &str,
    format: Format,
    out: W,
    report: &mut dyn FnMut(Problem),
) -> Result<DumpStats> {
    let mut archive: Box<dyn ArchiveWriter + '_> = match format {
        Format::Tar => Box::new(tar::TarWriter::new(out)),
        Format::Zip => Box::new(zip::ZipWriter::new(out)),
    };
    let mut stats = DumpStats::default();
    let prefix: Vec<&str> = prefix.split('/').filter(|c| !c.is_empty()).collect();
    let mut dumper = Walk {
        repo,
        archive: archive.as_mut(),
        report,
        stats: &mut stats,
    };
    dumper.tree(root, &prefix.join("/"), 0)?;
    archive
        .finish()
        .map_err(|e| Error::io("writing the archive", e))?;
    Ok(stats)
}

struct Walk<'a, 'w> {
    repo: &'a Repository,
    archive: &'a mut (dyn ArchiveWriter + 'w),
    report: &'a mut dyn FnMut(Problem),
    stats: &'a mut DumpStats,
}

impl Walk<'_, '_> {
    fn problem(&mut self, location: String, message: String) {
        self.stats.problems += 1;
        (self.report)(Problem { location, message });
    }

    fn tree(&mut self, id: &TreeId, dir: &str, depth: usize) -> Result<()> {
        if depth > MAX_DEPTH {
            self.problem(
                format!("/{dir}"),
                format!("nested deeper than {MAX_DEPTH} levels; skipped"),
            );
            return Ok(());
        }
        let tree = match self.repo.load_tree(id) {
            Ok(tree) => tree,
            Err(e) if depth > 0 => {
                self.problem(format!("/{dir}"), format!("cannot load directory: {e}"));
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let mut seen: HashSet<OsString> = HashSet::new();
        for node in &tree.nodes {
            let Some(name) = node.name.to_str() else {
                self.problem(
                    format!("/{dir}/{}", node.name.to_string_lossy()),
                    "name is not valid UTF-8 (not representable in the archive); skipped".into(),
                );
                continue;
            };
            let path = if dir.is_empty() {
                name.to_string()
            } else {
                format!("{dir}/{name}")
            };
            if let Err(why) = check_name(&node.name) {
                self.problem(
                    format!("/{dir}/{:?}", node.name),
                    format!("invalid node name: {why}; skipped"),
                );
                continue;
            }
            if !seen.insert(node.name.clone()) {
                self.problem(
                    format!("/{path}"),
                    "duplicate name in its directory; skipped".into(),
                );
                continue;
            }
            self.node(node, path, depth)?;
        }
        Ok(())
    }

    fn node(&mut self, node: &Node, path: String, depth: usize) -> Result<()> {
        let write_error = |e| Error::io("writing the archive", e);
        match node.node_type {
            NodeType::File => {
                let blobs = match file_blobs(self.repo, node) {
                    Ok(blobs) => blobs,
                    Err(why) => {
                        self.problem(format!("/{path}"), format!("{why}; file skipped"));
                        return Ok(());
                    }
                };
                let entry = Entry { path, node, blobs };
                let mut content = ContentReader::new(self.repo, entry.blobs.clone());
                self.archive
                    .add(&entry, &mut content)
                    .map_err(write_error)?;
                self.stats.entries += 1;
                self.stats.bytes += entry.size();
                if let Some(why) = content.failure {
                    self.problem(
                        format!("/{}", entry.path),
                        format!("content incomplete, bad data written as zeros: {why}"),
                    );
                }
            }
            NodeType::Symlink | NodeType::Dir => {
                let entry = Entry {
                    path,
                    node,
                    blobs: Vec::new(),
                };
                self.archive
                    .add(&entry, &mut io::empty())
                    .map_err(write_error)?;
                self.stats.entries += 1;
                match (&node.node_type, node.subtree) {
                    (NodeType::Symlink, _) => {}
                    (_, Some(subtree)) => self.tree(&subtree, &entry.path, depth + 1)?,
                    (_, None) => self.problem(
                        format!("/{}", entry.path),
                        "directory without subtree".into(),
                    ),
                }
            }
            // Like restic: other node types are not dumped.
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
