//! Index files (`index/<id>`): which pack holds which blob, at which offset.
//!
//! The JSON is restic's `jsonIndex`: `{"supersedes":[…],"packs":[…]}`, with
//! `supersedes` left out when empty, and each blob as `{"id","type",
//! "offset","length","uncompressed_length"}`, the last one only for
//! compressed blobs (restic omits a zero length). restic's encoder ends the
//! file with a newline, and so does [`IndexFile::to_json`].
//!
//! Reading also accepts the pre-0.8 format, a bare array of packs.
//! `length` is the stored (encrypted, possibly compressed) size of the blob
//! in the pack; `uncompressed_length` the plaintext size before compression.

use std::fmt;

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use super::gojson::{self, null_default};
use crate::blob::{BlobHandle, BlobType};
use crate::error::{Error, Result};
use crate::id::{BlobId, IndexId, PackId};

/// The decrypted (and decompressed) content of an index file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct IndexFile {
    /// Index files this one replaces (written by prune/rebuild-index).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub supersedes: Vec<IndexId>,
    pub packs: Vec<IndexPack>,
}

/// One pack and the blobs it holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexPack {
    pub id: PackId,
    #[serde(default, deserialize_with = "null_default")]
    pub blobs: Vec<IndexBlob>,
}

/// One blob's location inside its pack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexBlob {
    pub id: BlobId,
    #[serde(rename = "type")]
    pub tpe: BlobType,
    /// Byte offset of the encrypted blob in the pack.
    pub offset: u32,
    /// Stored length: IV + ciphertext (compressed or not) + MAC.
    pub length: u32,
    /// Plaintext length before compression, for compressed blobs only.
    #[serde(
        default,
        deserialize_with = "zero_is_none",
        skip_serializing_if = "none_or_zero"
    )]
    pub uncompressed_length: Option<u32>,
}

impl IndexBlob {
    /// The blob's type and id.
    pub fn handle(&self) -> BlobHandle {
        BlobHandle::new(self.tpe, self.id)
    }

    /// True if the blob is stored compressed.
    pub fn is_compressed(&self) -> bool {
        self.uncompressed_length.is_some()
    }
}

fn none_or_zero(v: &Option<u32>) -> bool {
    matches!(v, None | Some(0))
}

fn zero_is_none<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<u32>, D::Error> {
    Ok(Option::<u32>::deserialize(d)?.filter(|&n| n != 0))
}

impl IndexFile {
    /// The number of blob entries in all packs.
    pub fn blob_count(&self) -> usize {
        self.packs.iter().map(|p| p.blobs.len()).sum()
    }

    /// The JSON restic writes: `json.Encoder` output, newline-terminated.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = gojson::to_vec(self);
        out.push(b'\n');
        out
    }

    /// Parse a decrypted (and decompressed) index file, current or pre-0.8
    /// format.
    pub fn from_json(data: &[u8]) -> Result<IndexFile> {
        serde_json::from_slice(data).map_err(|e| Error::corrupt("index file", e))
    }

    /// [`from_json`](Self::from_json), with a large file in restic's
    /// layout parsed on every core (same result, same errors; see
    /// `index_split`).
    pub fn from_json_parallel(data: &[u8]) -> Result<IndexFile> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        match super::index_split::parse(data, cores) {
            Some(file) => Ok(file),
            None => Self::from_json(data),
        }
    }
}

/// The current format's object.
#[derive(Deserialize)]
struct IndexJson {
    #[serde(default, deserialize_with = "null_default")]
    supersedes: Vec<IndexId>,
    #[serde(default, deserialize_with = "null_default")]
    packs: Vec<IndexPack>,
}

impl<'de> Deserialize<'de> for IndexFile {
    /// An index object, or (old format) an array of packs.
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct IndexVisitor;

        impl<'de> Visitor<'de> for IndexVisitor {
            type Value = IndexFile;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an index object or an old-format array of packs")
            }

            fn visit_map<A: MapAccess<'de>>(
                self,
                map: A,
            ) -> std::result::Result<IndexFile, A::Error> {
                let raw = IndexJson::deserialize(MapAccessDeserializer::new(map))?;
                Ok(IndexFile {
                    supersedes: raw.supersedes,
                    packs: raw.packs,
                })
            }

            fn visit_seq<A: SeqAccess<'de>>(
                self,
                seq: A,
            ) -> std::result::Result<IndexFile, A::Error> {
                let packs = Vec::<IndexPack>::deserialize(SeqAccessDeserializer::new(seq))?;
                Ok(IndexFile {
                    supersedes: Vec::new(),
                    packs,
                })
            }
        }

        d.deserialize_any(IndexVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Index files written by restic 0.14.0 into a v2 repository
    /// (decrypted, decompressed), trailing newline included.
    const RESTIC_INDEXES: [&str; 2] = [
        "{\"packs\":[{\"id\":\"87494bfa7da8bc8e88e3181451ab976baa86bc1136368445e77d7f3b38614fc8\",\"blobs\":[{\"id\":\"73cb3858a687a8494ca3323053016282f3dad39d42cf62ca4e79dda2aac7d9ac\",\"type\":\"data\",\"offset\":47,\"length\":43,\"uncompressed_length\":2},{\"id\":\"5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03\",\"type\":\"data\",\"offset\":0,\"length\":47,\"uncompressed_length\":6},{\"id\":\"3bb2abb69ebb27fbfe63c7639624c6ec5e331b841a5bc8c3ebc10b9285e90877\",\"type\":\"data\",\"offset\":90,\"length\":43,\"uncompressed_length\":2}]},{\"id\":\"8a48dc85be63c8f558174eba36c76f141d9a9bc1032731582a2801452852119c\",\"blobs\":[{\"id\":\"136c9935e9a0f061fe67635cf2641af4ce1b0a6eb0e280bd5cd24524e99b132f\",\"type\":\"tree\",\"offset\":54,\"length\":747,\"uncompressed_length\":3185},{\"id\":\"ac08ce34ba4f8123618661bef2425f7028ffb9ac740578a3ee88684d2523fee8\",\"type\":\"tree\",\"offset\":0,\"length\":54,\"uncompressed_length\":13},{\"id\":\"18613e846a4da61b3bf6ed05ca9a60166143fe8827d85d577617820380fb792d\",\"type\":\"tree\",\"offset\":801,\"length\":249,\"uncompressed_length\":353}]}]}\n",
        "{\"packs\":[{\"id\":\"a445c564a23918c363a47c2f57390b8a1f00c6b8b0112e0fad6d31bfe66dc768\",\"blobs\":[{\"id\":\"79dc5210f651c366069ec6a8cd51eb76473e2b6e813a88c80ebfe8d48c6968ac\",\"type\":\"tree\",\"offset\":0,\"length\":836,\"uncompressed_length\":3953},{\"id\":\"425fd6ad65452a0d61e1cd2f4002b0f75eff26152017a77e410cb2a0647e370c\",\"type\":\"tree\",\"offset\":836,\"length\":248,\"uncompressed_length\":353}]}]}\n",
    ];

    fn id(hex: &str) -> crate::id::Id {
        crate::id::Id::from_hex(hex).unwrap()
    }

    #[test]
    fn restic_index_files_round_trip_exactly() {
        for json in RESTIC_INDEXES {
            let idx = IndexFile::from_json(json.as_bytes()).unwrap();
            assert_eq!(String::from_utf8(idx.to_json()).unwrap(), json);
        }
        let idx = IndexFile::from_json(RESTIC_INDEXES[0].as_bytes()).unwrap();
        assert_eq!(idx.packs.len(), 2);
        assert_eq!(idx.blob_count(), 6);
        let b = idx.packs[1].blobs[1];
        assert_eq!(b.tpe, BlobType::Tree);
        assert_eq!(
            (b.offset, b.length, b.uncompressed_length),
            (0, 54, Some(13))
        );
        assert_eq!(
            b.handle().id.to_hex(),
            "ac08ce34ba4f8123618661bef2425f7028ffb9ac740578a3ee88684d2523fee8"
        );
    }

    #[test]
    fn v1_blobs_and_supersedes() {
        let idx = IndexFile {
            supersedes: vec![IndexId(id(&"11".repeat(32)))],
            packs: vec![IndexPack {
                id: PackId(id(&"22".repeat(32))),
                blobs: vec![IndexBlob {
                    id: BlobId(id(&"33".repeat(32))),
                    tpe: BlobType::Data,
                    offset: 0,
                    length: 40,
                    uncompressed_length: None,
                }],
            }],
        };
        let json = String::from_utf8(idx.to_json()).unwrap();
        let want = format!(
            "{{\"supersedes\":[\"{}\"],\"packs\":[{{\"id\":\"{}\",\"blobs\":[{{\"id\":\"{}\",\"type\":\"data\",\"offset\":0,\"length\":40}}]}}]}}\n",
            "11".repeat(32),
            "22".repeat(32),
            "33".repeat(32)
        );
        assert_eq!(json, want);
        assert_eq!(IndexFile::from_json(json.as_bytes()).unwrap(), idx);
        // serde_json (without Go's escaping, which ids never need) agrees.
        assert_eq!(
            serde_json::from_slice::<IndexFile>(&serde_json::to_vec(&idx).unwrap()).unwrap(),
            idx
        );
        // restic omits a zero uncompressed length; read back as "not compressed".
        let zero = json.replace("\"length\":40", "\"length\":40,\"uncompressed_length\":0");
        assert!(!IndexFile::from_json(zero.as_bytes()).unwrap().packs[0].blobs[0].is_compressed());
    }

    #[test]
    fn old_format_is_read() {
        let old = format!(
            "[{{\"id\":\"{}\",\"blobs\":[{{\"id\":\"{}\",\"type\":\"tree\",\"offset\":7,\"length\":9}}]}}]",
            "22".repeat(32),
            "33".repeat(32)
        );
        let idx = IndexFile::from_json(old.as_bytes()).unwrap();
        assert!(idx.supersedes.is_empty());
        assert_eq!(idx.packs[0].blobs[0].offset, 7);
        assert_eq!(idx.packs[0].blobs[0].tpe, BlobType::Tree);
    }

    #[test]
    fn nulls_and_unknown_fields_are_tolerated() {
        let json = format!(
            "{{\"supersedes\":null,\"packs\":[{{\"id\":\"{}\",\"blobs\":null,\"x\":1}}],\"y\":{{}}}}",
            "22".repeat(32)
        );
        let idx = IndexFile::from_json(json.as_bytes()).unwrap();
        assert!(idx.packs[0].blobs.is_empty());
        assert_eq!(
            IndexFile::from_json(b"{\"packs\":null}").unwrap(),
            IndexFile::default()
        );
    }

    #[test]
    fn malformed_index_files_are_errors() {
        let pack = "22".repeat(32);
        let blob = "33".repeat(32);
        for json in [
            String::new(),
            "17".into(),
            "\"x\"".into(),
            format!("{{\"packs\":[{{\"id\":\"{pack}\",\"blobs\":[{{\"id\":\"{blob}\",\"type\":\"lock\",\"offset\":0,\"length\":1}}]}}]}}"),
            format!("{{\"packs\":[{{\"id\":\"{pack}\",\"blobs\":[{{\"id\":\"{blob}\",\"type\":\"data\",\"offset\":-1,\"length\":1}}]}}]}}"),
            format!("{{\"packs\":[{{\"id\":\"{pack}\",\"blobs\":[{{\"id\":\"{blob}\",\"type\":\"data\",\"offset\":0,\"length\":4294967296}}]}}]}}"),
            format!("{{\"packs\":[{{\"id\":\"{pack}\",\"blobs\":[{{\"id\":\"{blob}\",\"type\":\"data\",\"offset\":0}}]}}]}}"),
            r#"{"packs":[{"id":"abc","blobs":[]}]}"#.to_string(),
            format!("[{{\"id\":\"{pack}\"}}, 5]"),
        ] {
            assert!(
                matches!(IndexFile::from_json(json.as_bytes()), Err(Error::Corrupt { .. })),
                "{json:?}"
            );
        }
    }
}
