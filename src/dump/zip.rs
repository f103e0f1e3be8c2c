//! Zip output for `dump`, written as a stream (no seeking, so it can go to
//! a pipe): every entry's local header carries no sizes and is followed by
//! a data descriptor; the central directory at the end has the real values.
//! Files are deflated, symlinks stored with their target as content (as
//! Info-ZIP and Go do), directories are empty entries ending in `/`. Unix
//! modes go in the external attributes (made by "Unix"), mtimes in DOS
//! form (UTC) and in an extended-timestamp field. ZIP64 records are written
//! when sizes, offsets or the entry count need them.

use std::io::{self, Read, Write};

use chrono::{DateTime, Datelike, Timelike};
use flate2::write::DeflateEncoder;
use flate2::Compression;

use crate::format::tree::NodeType;

use super::{ArchiveWriter, Entry};

const LOCAL_HEADER: u32 = 0x0403_4b50;
const DATA_DESCRIPTOR: u32 = 0x0807_4b50;
const CENTRAL_HEADER: u32 = 0x0201_4b50;
const ZIP64_END: u32 = 0x0606_4b50;
const ZIP64_LOCATOR: u32 = 0x0706_4b50;
const END: u32 = 0x0605_4b50;
/// Sizes follow the data; names are UTF-8.
const FLAGS: u16 = 0x0008 | 0x0800;
const STORE: u16 = 0;
const DEFLATE: u16 = 8;
const VERSION: u16 = 20;
const VERSION_ZIP64: u16 = 45;
/// "Made by" Unix, so readers use the mode in the external attributes.
const MADE_BY_UNIX: u16 = 3 << 8;
const U32_MAX: u64 = u32::MAX as u64;

/// A writer that counts what went through it.
struct Counting<W> {
    inner: W,
    count: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// What the central directory needs to know of an entry.
struct CentralEntry {
    name: Vec<u8>,
    method: u16,
    dos_time: u16,
    dos_date: u16,
    mtime: Option<u32>,
    crc: u32,
    compressed: u64,
    uncompressed: u64,
    offset: u64,
    external: u32,
}

impl CentralEntry {
    fn zip64(&self) -> bool {
        self.compressed >= U32_MAX || self.uncompressed >= U32_MAX || self.offset >= U32_MAX
    }
}

pub(super) struct ZipWriter<W: Write> {
    out: Counting<W>,
    entries: Vec<CentralEntry>,
}

impl<W: Write> ZipWriter<W> {
    pub fn new(out: W) -> Self {
        ZipWriter {
            out: Counting {
                inner: out,
                count: 0,
            },
            entries: Vec::new(),
        }
    }
}

fn put16(buf: &mut Vec<u8>, v: u16) {
    buf.extend_from_slice(&v.to_le_bytes());
}

fn put32(buf: &mut Vec<u8>, v: u32) {
    buf.extend_from_slice(&v.to_le_bytes());
}

fn put64(buf: &mut Vec<u8>, v: u64) {
    buf.extend_from_slice(&v.to_le_bytes());
}

/// `v` as a 32-bit field, or the ZIP64 marker.
fn field32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// MS-DOS date and time (2-second resolution; 1980 at the earliest).
fn dos_time(secs: i64) -> (u16, u16) {
    let Some(t) = DateTime::from_timestamp(secs, 0).filter(|t| (1980..2108).contains(&t.year()))
    else {
        return (0, (1 << 5) | 1);
    };
    let time = (t.hour() << 11) | (t.minute() << 5) | (t.second() / 2);
    let date = ((t.year() as u32 - 1980) << 9) | (t.month() << 5) | t.day();
    (time as u16, date as u16)
}

/// The extended-timestamp extra field (mtime only).
fn timestamp_extra(mtime: Option<u32>) -> Vec<u8> {
    let mut extra = Vec::new();
    if let Some(mtime) = mtime {
        put16(&mut extra, 0x5455);
        put16(&mut extra, 5);
        extra.push(1);
        put32(&mut extra, mtime);
    }
    extra
}

/// A Unix mode with its file type bits, for the external attributes.
fn unix_mode(node_type: &NodeType, perm: u32) -> u32 {
    let kind = match node_type {
        NodeType::Dir => 0o040_000,
        NodeType::Symlink => 0o120_000,
        _ => 0o100_000,
    };
    kind | (perm & 0o7777)
}

impl<W: Write> ArchiveWriter for ZipWriter<W> {
    fn add(&mut self, entry: &Entry<'_>, content: &mut dyn Read) -> io::Result<()> {
        let node = entry.node;
        let mut name = entry.path.clone().into_bytes();
        if node.node_type == NodeType::Dir {
            name.push(b'/');
        }
        if name.len() > usize::from(u16::MAX) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("path of {} bytes is too long for zip", name.len()),
            ));
        }
        let secs = node.mtime.unix().0;
        let (dos_time, dos_date) = dos_time(secs);
        let mtime = u32::try_from(secs).ok().filter(|&s| s <= i32::MAX as u32);
        let method = if node.node_type == NodeType::File {
            DEFLATE
        } else {
            STORE
        };
        let mode = unix_mode(&node.node_type, node.unix_mode());
        let mut external = mode << 16;
        if node.node_type == NodeType::Dir {
            external |= 0x10;
        }
        if mode & 0o222 == 0 {
            external |= 0x01;
        }
        let offset = self.out.count;
        let extra = timestamp_extra(mtime);
        let mut header = Vec::with_capacity(30 + name.len() + extra.len());
        put32(&mut header, LOCAL_HEADER);
        put16(&mut header, VERSION);
        put16(&mut header, FLAGS);
        put16(&mut header, method);
        put16(&mut header, dos_time);
        put16(&mut header, dos_date);
        put32(&mut header, 0);
        put32(&mut header, 0);
        put32(&mut header, 0);
        put16(&mut header, name.len() as u16);
        put16(&mut header, extra.len() as u16);
        header.extend_from_slice(&name);
        header.extend_from_slice(&extra);
        self.out.write_all(&header)?;

        let start = self.out.count;
        let mut crc = crc32fast::Hasher::new();
        let mut uncompressed = 0u64;
        match node.node_type {
            NodeType::File => {
                let mut encoder = DeflateEncoder::new(&mut self.out, Compression::fast());
                let mut buf = vec![0u8; 64 << 10];
                loop {
                    let n = content.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    crc.update(&buf[..n]);
                    encoder.write_all(&buf[..n])?;
                    uncompressed += n as u64;
                }
                encoder.finish()?;
            }
            NodeType::Symlink => {
                let target = node.link_target.as_encoded_bytes();
                crc.update(target);
                self.out.write_all(target)?;
                uncompressed = target.len() as u64;
            }
            _ => {}
        }
        let entry = CentralEntry {
            name,
            method,
            dos_time,
            dos_date,
            mtime,
            crc: crc.finalize(),
            compressed: self.out.count - start,
            uncompressed,
            offset,
            external,
        };
        let mut descriptor = Vec::with_capacity(24);
        put32(&mut descriptor, DATA_DESCRIPTOR);
        put32(&mut descriptor, entry.crc);
        if entry.compressed >= U32_MAX || entry.uncompressed >= U32_MAX {
            put64(&mut descriptor, entry.compressed);
            put64(&mut descriptor, entry.uncompressed);
        } else {
            put32(&mut descriptor, entry.compressed as u32);
            put32(&mut descriptor, entry.uncompressed as u32);
        }
        self.out.write_all(&descriptor)?;
        self.entries.push(entry);
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        let start = self.out.count;
        for e in &self.entries {
            let zip64 = e.zip64();
            let mut extra = Vec::new();
            if zip64 {
                put16(&mut extra, 0x0001);
                put16(&mut extra, 24);
                put64(&mut extra, e.uncompressed);
                put64(&mut extra, e.compressed);
                put64(&mut extra, e.offset);
            }
            extra.extend_from_slice(&timestamp_extra(e.mtime));
            let version = if zip64 { VERSION_ZIP64 } else { VERSION };
            let mut h = Vec::with_capacity(46 + e.name.len() + extra.len());
            put32(&mut h, CENTRAL_HEADER);
            put16(&mut h, MADE_BY_UNIX | version);
            put16(&mut h, version);
            put16(&mut h, FLAGS);
            put16(&mut h, e.method);
            put16(&mut h, e.dos_time);
            put16(&mut h, e.dos_date);
            put32(&mut h, e.crc);
            let (compressed, uncompressed, offset) = if zip64 {
                (u32::MAX, u32::MAX, u32::MAX)
            } else {
                (
                    field32(e.compressed),
                    field32(e.uncompressed),
                    field32(e.offset),
                )
            };
            put32(&mut h, compressed);
            put32(&mut h, uncompressed);
            put16(&mut h, e.name.len() as u16);
            put16(&mut h, extra.len() as u16);
            put16(&mut h, 0); // comment
            put16(&mut h, 0); // disk
            put16(&mut h, 0); // internal attributes
            put32(&mut h, e.external);
            put32(&mut h, offset);
            h.extend_from_slice(&e.name);
            h.extend_from_slice(&extra);
            self.out.write_all(&h)?;
        }
        let end = self.out.count;
        let (count, size) = (self.entries.len() as u64, end - start);
        let mut tail = Vec::new();
        if count >= u64::from(u16::MAX) || size >= U32_MAX || start >= U32_MAX {
            put32(&mut tail, ZIP64_END);
            put64(&mut tail, 44);
            put16(&mut tail, MADE_BY_UNIX | VERSION_ZIP64);
            put16(&mut tail, VERSION_ZIP64);
            put32(&mut tail, 0);
            put32(&mut tail, 0);
            put64(&mut tail, count);
            put64(&mut tail, count);
            put64(&mut tail, size);
            put64(&mut tail, start);
            put32(&mut tail, ZIP64_LOCATOR);
            put32(&mut tail, 0);
            put64(&mut tail, end);
            put32(&mut tail, 1);
        }
        let count16 = u16::try_from(count).unwrap_or(u16::MAX);
        put32(&mut tail, END);
        put16(&mut tail, 0);
        put16(&mut tail, 0);
        put16(&mut tail, count16);
        put16(&mut tail, count16);
        put32(&mut tail, field32(size));
        put32(&mut tail, field32(start));
        put16(&mut tail, 0);
        self.out.write_all(&tail)?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dos_times() {
        // 2020-09-13 12:26:40 UTC
        let (time, date) = dos_time(1_600_000_000);
        assert_eq!(time, (12 << 11) | (26 << 5) | 20);
        assert_eq!(date, (40 << 9) | (9 << 5) | 13);
        assert_eq!(dos_time(0), (0, (1 << 5) | 1), "before 1980");
    }

    #[test]
    fn modes_carry_the_file_type() {
        assert_eq!(unix_mode(&NodeType::Dir, 0o755), 0o040_755);
        assert_eq!(unix_mode(&NodeType::Symlink, 0o777), 0o120_777);
        assert_eq!(unix_mode(&NodeType::File, 0o104_755), 0o104_755);
    }
}
