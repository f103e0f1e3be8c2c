//! Tar output for `dump`, as restic writes it: ustar headers (GNU long-name
//! records for paths over 100 bytes) with the node's permission bits
//! including setuid/setgid/sticky, numeric and named owner and mtime in
//! seconds, preceded by a PAX header with what ustar cannot hold, as Go's
//! `archive/tar` writes it for restic: access and change times, the mtime
//! when it has nanoseconds, and extended attributes (`SCHILY.xattr.*`).

use std::collections::BTreeMap;
use std::io::{self, Read, Write};

use tar::{Builder, EntryType, Header};

use crate::format::time::GoTime;
use crate::format::tree::{Node, NodeType};

use super::{ArchiveWriter, Entry};

pub(super) struct TarWriter<W: Write> {
    builder: Builder<W>,
}

impl<W: Write> TarWriter<W> {
    pub fn new(out: W) -> Self {
        TarWriter {
            builder: Builder::new(out),
        }
    }

    /// A PAX extended header carrying `records` for the next entry.
    fn pax(&mut self, path: &str, records: &BTreeMap<String, Vec<u8>>) -> io::Result<()> {
        let mut data = Vec::new();
        for (key, value) in records {
            data.extend_from_slice(&pax_record(key, value));
        }
        let mut header = Header::new_ustar();
        header.set_entry_type(EntryType::XHeader);
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        let name = path.rsplit('/').next().unwrap_or(path);
        let short: String = name.chars().take(80).collect();
        self.builder
            .append_data(&mut header, format!("PaxHeaders.0/{short}"), &data[..])
    }
}

/// A time as PAX writes it: seconds, and a fraction only if non-zero.
fn pax_time(t: &GoTime) -> Vec<u8> {
    let (secs, nanos) = t.unix();
    let text = if nanos == 0 {
        secs.to_string()
    } else {
        let frac = format!("{nanos:09}");
        format!("{secs}.{}", frac.trim_end_matches('0'))
    };
    text.into_bytes()
}

/// The PAX records of a node (Go's choice for restic's headers).
fn pax_records(node: &Node) -> BTreeMap<String, Vec<u8>> {
    let mut records = BTreeMap::new();
    for attr in &node.extended_attributes {
        records.insert(format!("SCHILY.xattr.{}", attr.name), attr.value.clone());
    }
    if !node.atime.is_zero() {
        records.insert("atime".into(), pax_time(&node.atime));
    }
    if !node.ctime.is_zero() {
        records.insert("ctime".into(), pax_time(&node.ctime));
    }
    if node.mtime.unix().1 != 0 {
        records.insert("mtime".into(), pax_time(&node.mtime));
    }
    records
}

/// One PAX record: `"<length> <key>=<value>\n"`, the length counting
/// itself.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut length = body + 1;
    while body + length.to_string().len() != length {
        length = body + length.to_string().len();
    }
    let mut record = format!("{length} {key}=").into_bytes();
    record.extend_from_slice(value);
    record.push(b'\n');
    record
}

/// A uid or gid for the header (restic writes -1 as 0).
fn id(value: u32) -> u64 {
    if value == u32::MAX {
        0
    } else {
        u64::from(value)
    }
}

impl<W: Write> ArchiveWriter for TarWriter<W> {
    fn add(&mut self, entry: &Entry<'_>, content: &mut dyn Read) -> io::Result<()> {
        let node = entry.node;
        let records = pax_records(node);
        if !records.is_empty() {
            self.pax(&entry.path, &records)?;
        }
        let mut header = Header::new_ustar();
        header.set_mode(node.unix_mode() & 0o7777);
        header.set_uid(id(node.uid));
        header.set_gid(id(node.gid));
        // Names too long for the header are left out, as is their loss.
        let _ = header.set_username(&node.user);
        let _ = header.set_groupname(&node.group);
        header.set_mtime(u64::try_from(node.mtime.unix().0).unwrap_or(0));
        match node.node_type {
            NodeType::Dir => {
                header.set_entry_type(EntryType::Directory);
                header.set_size(0);
                self.builder
                    .append_data(&mut header, format!("{}/", entry.path), io::empty())
            }
            NodeType::Symlink => {
                header.set_entry_type(EntryType::Symlink);
                header.set_size(0);
                self.builder
                    .append_link(&mut header, &entry.path, &node.link_target)
            }
            _ => {
                header.set_entry_type(EntryType::Regular);
                header.set_size(entry.size());
                self.builder.append_data(&mut header, &entry.path, content)
            }
        }
    }

    fn finish(&mut self) -> io::Result<()> {
        self.builder.finish()?;
        self.builder.get_mut().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_records_count_their_own_length() {
        assert_eq!(pax_record("a", b"b"), b"6 a=b\n");
        let long = pax_record("SCHILY.xattr.user.k", &[b'v'; 100]);
        let text = String::from_utf8(long.clone()).unwrap();
        let (len, _) = text.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), long.len());
        // A 9-byte body needs a two-digit length: 11 in all.
        assert_eq!(pax_record("k", b"12345"), b"11 k=12345\n");
    }

    #[test]
    fn pax_times_like_go() {
        assert_eq!(
            pax_time(&GoTime::from_unix_utc(1_600_000_000, 0)),
            b"1600000000"
        );
        assert_eq!(
            pax_time(&GoTime::from_unix_utc(1_600_000_000, 120_000_000)),
            b"1600000000.12"
        );
    }
}
