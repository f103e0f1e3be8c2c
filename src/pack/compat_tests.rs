//! Compatibility with packs written by restic itself (see
//! `testdata/README.md`): headers and blobs of repository versions 1
//! (uncompressed) and 2 (compressed) must read back exactly as restic's
//! index describes them, and our header encoding must reproduce restic's
//! header bytes.

use crate::blob::BlobType;
use crate::crypto::MasterKey;
use crate::id::{Id, PackId};

use super::{decode_blob, encode_header, read_header, PackBlob, PackWriter};

const DATA_ID: &str = "5ba18699a5f3192ab4af250ee0529e5658e09d5fa388bf169f631a2220f830fc";
const TREE_ID: &str = "40ce9ded090820204d058866108181c0769521f939872b2a25fd9865572cadeb";

/// One restic pack and the single blob restic's index lists for it.
struct Fixture {
    key: &'static [u8],
    pack_id: &'static str,
    pack: &'static [u8],
    blob: (BlobType, &'static str, u32, Option<u32>),
}

fn fixtures() -> [Fixture; 4] {
    const V1_KEY: &[u8] = include_bytes!("testdata/restic-0.14-v1/masterkey.json");
    const V2_KEY: &[u8] = include_bytes!("testdata/restic-0.14-v2/masterkey.json");
    [
        Fixture {
            key: V1_KEY,
            pack_id: "ba481813130f9b45fa8db95c2df86efa3968b46a0e9931112434da2318bd448a",
            pack: include_bytes!("testdata/restic-0.14-v1/ba481813.pack"),
            blob: (BlobType::Data, DATA_ID, 602, None),
        },
        Fixture {
            key: V1_KEY,
            pack_id: "893a3e05d45c073e33f9a33f4aacb88bb46ea7708a601755d3785b9f9fe16b5f",
            pack: include_bytes!("testdata/restic-0.14-v1/893a3e05.pack"),
            blob: (BlobType::Tree, TREE_ID, 393, None),
        },
        Fixture {
            key: V2_KEY,
            pack_id: "ed5caa2dc7866440b0beefafd3f7bc83e35125412b8c347a3cc8e0f8293cfda8",
            pack: include_bytes!("testdata/restic-0.14-v2/ed5caa2d.pack"),
            blob: (BlobType::Data, DATA_ID, 71, Some(570)),
        },
        Fixture {
            key: V2_KEY,
            pack_id: "a7dec3a3adae6d0c84c4571e15af03025b0e0649e90c29ee8a488f50f7edcf3f",
            pack: include_bytes!("testdata/restic-0.14-v2/a7dec3a3.pack"),
            blob: (BlobType::Tree, TREE_ID, 260, Some(361)),
        },
    ]
}

fn read(f: &Fixture) -> (MasterKey, PackId, Vec<PackBlob>) {
    let key = MasterKey::from_json(f.key).unwrap();
    let id: PackId = f.pack_id.parse().unwrap();
    let size = f.pack.len() as u64;
    let header = read_header(&key, &id, size, |off, len| {
        Ok(f.pack[off as usize..(off + len) as usize].to_vec())
    })
    .unwrap();
    (key, id, header)
}

#[test]
fn restic_packs_read_as_restic_indexes_them() {
    for f in fixtures() {
        let (key, id, header) = read(&f);
        assert_eq!(PackId(Id::hash(f.pack)), id);
        let (tpe, blob_id, length, uncompressed_length) = f.blob;
        let expected = PackBlob {
            tpe,
            id: blob_id.parse().unwrap(),
            offset: 0,
            length,
            uncompressed_length,
        };
        assert_eq!(header, [expected], "pack {}", f.pack_id);

        let plain = decode_blob(&key, &id, &expected, &f.pack[..length as usize]).unwrap();
        match tpe {
            BlobType::Data => assert_eq!(plain, "hello, restic pack\n".repeat(30).as_bytes()),
            BlobType::Tree => {
                let json: serde_json::Value = serde_json::from_slice(&plain).unwrap();
                assert_eq!(json["nodes"][0]["name"], "hello.txt");
            }
        }
    }
}

#[test]
fn our_header_bytes_equal_restics() {
    for f in fixtures() {
        let (key, _, header) = read(&f);
        let n = f.pack.len();
        let header_len = u32::from_le_bytes(f.pack[n - 4..].try_into().unwrap()) as usize;
        let restic_plain = key.decrypt(&f.pack[n - 4 - header_len..n - 4]).unwrap();
        assert_eq!(encode_header(&header), restic_plain, "pack {}", f.pack_id);
    }
}

#[test]
fn repacking_restic_blobs_gives_an_equivalent_pack() {
    for f in fixtures() {
        let (key, _, header) = read(&f);
        let mut w = PackWriter::new();
        for b in &header {
            let bytes = &f.pack[b.offset as usize..b.end() as usize];
            w.add(b.tpe, b.id, bytes, b.uncompressed_length).unwrap();
        }
        let ours = w.finish(&key);
        assert_eq!(ours.blobs, header);
        // Same size as restic's; different bytes only through the header IV.
        assert_eq!(ours.data.len(), f.pack.len());
        let blob_end = header.last().map_or(0, |b| b.end() as usize);
        assert_eq!(ours.data[..blob_end], f.pack[..blob_end]);
        let reread = read_header(&key, &ours.id, ours.data.len() as u64, |off, len| {
            Ok(ours.data[off as usize..(off + len) as usize].to_vec())
        })
        .unwrap();
        assert_eq!(reread, header);
    }
}
