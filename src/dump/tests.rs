//! Dump tests on hand-built snapshots: tar and zip read back entry by
//! entry (tar with the `tar` crate, zip with a small reader of the central
//! directory that inflates and checks every CRC), hostile names, and
//! corrupted blobs.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;

use crate::backend::{Backend, FileType, MemBackend};
use crate::format::time::GoTime;
use crate::format::tree::{go_mode_from_unix, ExtendedAttribute, Node, NodeType, Tree};
use crate::repository::Repository;
use crate::testutil::{dir_node, file_node, mem_repo};

use super::*;

fn repo() -> (Arc<MemBackend>, Repository) {
    mem_repo(2)
}

fn file(repo: &Repository, name: &str, chunks: &[&[u8]], mode: u32) -> Node {
    let mut node = file_node(repo, name, chunks);
    node.mode = go_mode_from_unix(mode);
    node.mtime = GoTime::from_unix_utc(1_600_000_000, 0);
    node.uid = 1000;
    node.gid = 100;
    node.user = "ann".into();
    node
}

fn dir(repo: &Repository, name: &str, nodes: Vec<Node>) -> Node {
    let mut node = dir_node(repo, name, nodes);
    node.mode = go_mode_from_unix(0o040_750);
    node.mtime = GoTime::from_unix_utc(1_500_000_000, 0);
    node
}

fn symlink(name: &str, target: &str) -> Node {
    let mut node = Node::new(name, NodeType::Symlink);
    node.link_target = target.into();
    node.mode = go_mode_from_unix(0o120_777);
    node
}

fn save_root(repo: &Repository, nodes: Vec<Node>) -> TreeId {
    let id = repo.save_tree(&Tree { nodes }).unwrap();
    repo.flush().unwrap();
    id
}

fn sample(repo: &Repository) -> TreeId {
    let big: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut tagged = file(repo, "tagged", &[b"x"], 0o104_755);
    tagged.extended_attributes = vec![ExtendedAttribute {
        name: "user.note".into(),
        value: b"hello".to_vec(),
    }];
    save_root(
        repo,
        vec![dir(
            repo,
            "home",
            vec![
                file(
                    repo,
                    "big.bin",
                    &[&big[..100_000], &big[100_000..]],
                    0o100_644,
                ),
                tagged,
                symlink("link", "../outside"),
                dir(repo, "empty", vec![]),
            ],
        )],
    )
}

/// (path, type, mode, content or link target) of every tar entry.
fn read_tar(data: &[u8]) -> BTreeMap<String, (char, u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut archive = ::tar::Archive::new(data);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let header = entry.header().clone();
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        if let Some(link) = entry.link_name().unwrap() {
            content = link.to_string_lossy().as_bytes().to_vec();
        }
        let kind = header.entry_type().as_byte() as char;
        out.insert(path, (kind, header.mode().unwrap(), content));
    }
    out
}

#[test]
fn tar_of_a_directory_has_paths_modes_content_and_xattrs() {
    let (_, repo) = repo();
    let root = sample(&repo);
    let home = crate::tree::resolve_path(&repo, &root, "/home")
        .unwrap()
        .unwrap()
        .subtree
        .unwrap();
    let mut out = Vec::new();
    let stats = dump_tree(&repo, &home, "/home", Format::Tar, &mut out, &mut |p| {
        panic!("{p}")
    })
    .unwrap();
    assert_eq!((stats.entries, stats.problems), (4, 0));
    let entries = read_tar(&out);
    let names: Vec<&str> = entries.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        vec!["home/big.bin", "home/empty/", "home/link", "home/tagged"]
    );
    let big: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    assert_eq!(entries["home/big.bin"], ('0', 0o644, big));
    assert_eq!(entries["home/tagged"], ('0', 0o4755, b"x".to_vec()));
    assert_eq!(entries["home/link"], ('2', 0o777, b"../outside".to_vec()));
    assert_eq!(entries["home/empty/"].0, '5');
    // The PAX record for the xattr precedes "tagged".
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("SCHILY.xattr.user.note=hello\n"));
    assert_eq!(out.len() % 512, 0);
}

#[test]
fn tar_of_the_root_and_hostile_names() {
    let (_, repo) = repo();
    let root = save_root(
        &repo,
        vec![
            file(&repo, "..", &[b"up"], 0o644),
            file(&repo, "a/b", &[b"slash"], 0o644),
            file(&repo, "ok", &[b"fine"], 0o644),
            file(&repo, "ok", &[b"duplicate"], 0o644),
            dir(&repo, "d", vec![file(&repo, "", &[b"empty"], 0o644)]),
        ],
    );
    let mut problems = Vec::new();
    let mut out = Vec::new();
    let stats = dump_tree(&repo, &root, "/", Format::Tar, &mut out, &mut |p| {
        problems.push(p)
    })
    .unwrap();
    assert_eq!(stats.problems, 4, "{problems:?}");
    let entries = read_tar(&out);
    let names: Vec<&str> = entries.keys().map(String::as_str).collect();
    assert_eq!(names, vec!["d/", "ok"]);
    assert_eq!(entries["ok"].2, b"fine");
}

#[test]
fn corrupted_blob_becomes_zeros_and_is_reported() {
    let (mem, repo) = repo();
    let good: &[u8] = b"good part ";
    let bad: &[u8] = b"this blob is damaged in its pack";
    let root = save_root(
        &repo,
        vec![
            file(&repo, "damaged", &[good, bad], 0o644),
            file(&repo, "fine", &[b"fine"], 0o644),
        ],
    );
    let bad_id = BlobId(crate::id::Id::hash(bad));
    let entry = repo
        .lookup(&BlobHandle::new(BlobType::Data, bad_id))
        .unwrap();
    let name = entry.pack.to_hex();
    let mut pack = mem.read(FileType::Pack, &name).unwrap();
    pack[entry.offset as usize + 20] ^= 1;
    mem.remove(FileType::Pack, &name).unwrap();
    mem.write(FileType::Pack, &name, &pack).unwrap();

    let mut problems = Vec::new();
    let mut out = Vec::new();
    dump_tree(&repo, &root, "", Format::Tar, &mut out, &mut |p| {
        problems.push(p)
    })
    .unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].location, "/damaged");
    let entries = read_tar(&out);
    let mut expected = good.to_vec();
    expected.resize(good.len() + bad.len(), 0);
    assert_eq!(entries["damaged"].2, expected);
    assert_eq!(entries["fine"].2, b"fine");

    // A single file stops at the bad blob.
    let node = crate::tree::resolve_path(&repo, &root, "/damaged")
        .unwrap()
        .unwrap();
    let mut single = Vec::new();
    assert!(dump_file(&repo, &node, &mut single).is_err());
    assert_eq!(single, good);
}

/// Entries of a zip, checked: (name, external attributes, content).
fn read_zip(data: &[u8]) -> Vec<(String, u32, Vec<u8>)> {
    let u16_at = |at: usize| u16::from_le_bytes([data[at], data[at + 1]]) as usize;
    let u32_at = |at: usize| u32::from_le_bytes(data[at..at + 4].try_into().unwrap());
    let end = data.len() - 22;
    assert_eq!(u32_at(end), 0x0605_4b50);
    let count = u16_at(end + 10);
    let mut at = u32_at(end + 16) as usize;
    let mut out = Vec::new();
    for _ in 0..count {
        assert_eq!(u32_at(at), 0x0201_4b50);
        let method = u16_at(at + 10);
        let crc = u32_at(at + 16);
        let compressed = u32_at(at + 20) as usize;
        let size = u32_at(at + 24) as usize;
        let (name_len, extra_len) = (u16_at(at + 28), u16_at(at + 30));
        let external = u32_at(at + 38);
        let local = u32_at(at + 42) as usize;
        let name = String::from_utf8(data[at + 46..at + 46 + name_len].to_vec()).unwrap();
        at += 46 + name_len + extra_len;
        assert_eq!(u32_at(local), 0x0403_4b50);
        let start = local + 30 + u16_at(local + 26) + u16_at(local + 28);
        let raw = &data[start..start + compressed];
        let content = if method == 8 {
            let mut plain = Vec::new();
            flate2::read::DeflateDecoder::new(raw)
                .read_to_end(&mut plain)
                .unwrap();
            plain
        } else {
            raw.to_vec()
        };
        assert_eq!(content.len(), size, "{name}");
        assert_eq!(crc32fast::hash(&content), crc, "{name}");
        // The data descriptor repeats the CRC.
        assert_eq!(u32_at(start + compressed), 0x0807_4b50);
        assert_eq!(u32_at(start + compressed + 4), crc);
        out.push((name, external, content));
    }
    out
}

#[test]
fn zip_streams_entries_that_read_back() {
    let (_, repo) = repo();
    let root = sample(&repo);
    let mut out = Vec::new();
    dump_tree(&repo, &root, "/", Format::Zip, &mut out, &mut |p| {
        panic!("{p}")
    })
    .unwrap();
    let entries = read_zip(&out);
    let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "home/",
            "home/big.bin",
            "home/tagged",
            "home/link",
            "home/empty/"
        ]
    );
    let big: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    assert_eq!(entries[1].2, big);
    assert_eq!(entries[0].1 >> 16, 0o040_750);
    assert_eq!(entries[2].1 >> 16, 0o104_755);
    assert_eq!(
        (entries[3].1 >> 16, entries[3].2.as_slice()),
        (0o120_777, &b"../outside"[..])
    );
}

#[test]
fn formats_parse() {
    assert_eq!("tar".parse::<Format>().unwrap(), Format::Tar);
    assert_eq!("zip".parse::<Format>().unwrap(), Format::Zip);
    assert!("rar".parse::<Format>().is_err());
}
