//! `KeyFile`: the JSON document stored, unencrypted, as `keys/<id>`.
//!
//! It records who created the key and how to turn a password into a user
//! key (scrypt with `N`, `r`, `p` and `salt`); `data` is the master key's JSON
//! sealed with that user key. The file's id is the SHA-256 of its bytes.
//! Deriving and unsealing live in [`crate::crypto`]
//! ([`KeyFile::create`], [`KeyFile::open`]); this module is only the shape.
//!
//! Invariants: fields serialize in restic's order and byte arrays as
//! standard padded base64, as Go's `encoding/json` writes them; unknown
//! fields are ignored and a `null` string reads as empty, as Go reads them.

use serde::{Deserialize, Serialize};

use super::gojson::{self, null_default};
use crate::error::{Error, Result};

/// The contents of a `keys/<id>` file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyFile {
    /// Creation time, RFC 3339 with nanoseconds and offset as Go writes it
    /// (e.g. `2024-03-01T12:00:00.123456789+01:00`). Informational only.
    #[serde(default, deserialize_with = "null_default")]
    pub created: String,
    /// User who created the key. Informational only.
    #[serde(default, deserialize_with = "null_default")]
    pub username: String,
    /// Host the key was created on. Informational only.
    #[serde(default, deserialize_with = "null_default")]
    pub hostname: String,
    /// The key derivation function; restic only knows `"scrypt"`.
    pub kdf: String,
    /// scrypt CPU/memory cost (a power of two).
    #[serde(rename = "N")]
    pub n: u32,
    /// scrypt block size.
    pub r: u32,
    /// scrypt parallelism.
    pub p: u32,
    /// scrypt salt (restic uses 64 random bytes).
    #[serde(with = "base64_bytes")]
    pub salt: Vec<u8>,
    /// `IV || ciphertext || MAC` of the master key's JSON, under the user key.
    #[serde(with = "base64_bytes")]
    pub data: Vec<u8>,
}

impl KeyFile {
    /// Serialize exactly as restic does (`json.Marshal`): compact, Go's
    /// string escaping, no trailing newline. The key's id is the SHA-256 of
    /// these bytes.
    pub fn to_json(&self) -> Vec<u8> {
        gojson::to_vec(self)
    }

    /// Parse a key file (any valid JSON layout).
    pub fn from_json(json: &[u8]) -> Result<KeyFile> {
        serde_json::from_slice(json).map_err(|e| Error::corrupt("key file", e))
    }
}

/// Serde adapter for byte strings in Go's JSON encoding: standard base64 with
/// padding. Like Go, decoding tolerates non-zero trailing bits.
pub(crate) mod base64_bytes {
    use base64::alphabet::STANDARD;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    const GO_STD_ENCODING: GeneralPurpose = GeneralPurpose::new(
        &STANDARD,
        GeneralPurposeConfig::new()
            .with_encode_padding(true)
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
    );

    pub(crate) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&GO_STD_ENCODING.encode(bytes))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        GO_STD_ENCODING
            .decode(text.as_bytes())
            .map_err(|e| serde::de::Error::custom(format!("invalid base64: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key file written by restic 0.14.0 (`restic init`).
    const RESTIC_KEY_FILE: &str = r#"{"created":"2026-11-23T14:41:33.1359768Z","username":"root","hostname":"vm","kdf":"scrypt","N":32768,"r":8,"p":4,"salt":"vxA5UuldRumpFkop1Z88tl1/7UjOtc0Qn/feECCgYdTLTTZ5WEQ4Y9r7g+jCiPG1I6AkgdjM721hA0a8DX8EQw==","data":"LB28zCHZ5AR+lkR6NdoSwFas/qJZ763PBdpBPzUcJELJ+Lm+tLxY4keXmL1fbRTbEnulx1jp5QZ3uG2TBqsoika3UrA1YxIcM4TxRgO95dAOME7YZWgDmsbfEmByLqvPJS9pAMAqnhU/9IjrVeWduzRPo9s47LNKm4qlimIK2q8YHvjwaXNWKN/HJexYlOSDFXOvlNRXeHSYaWsKnDI4YA=="}"#;

    #[test]
    fn parses_and_reserializes_restic_key_file_byte_for_byte() {
        let key = KeyFile::from_json(RESTIC_KEY_FILE.as_bytes()).expect("parses");
        assert_eq!(key.created, "2026-11-23T14:41:33.1359768Z");
        assert_eq!(key.username, "root");
        assert_eq!(key.hostname, "vm");
        assert_eq!(key.kdf, "scrypt");
        assert_eq!((key.n, key.r, key.p), (32768, 8, 4));
        assert_eq!(key.salt.len(), 64);
        // IV, the 128-byte compact master key JSON, MAC.
        assert_eq!(key.data.len(), 16 + 128 + 16);
        assert_eq!(key.to_json(), RESTIC_KEY_FILE.as_bytes());
    }

    #[test]
    fn strings_are_escaped_as_go_escapes_them() {
        let key = KeyFile {
            created: "2024-01-02T03:04:05Z".into(),
            username: "a<b>&c".into(),
            hostname: "h\"ost".into(),
            kdf: "scrypt".into(),
            n: 2,
            r: 1,
            p: 1,
            salt: vec![0xfb, 0xff],
            data: vec![],
        };
        let json = key.to_json();
        assert_eq!(
            std::str::from_utf8(&json).expect("utf-8"),
            r#"{"created":"2024-01-02T03:04:05Z","username":"a\u003cb\u003e\u0026c","hostname":"h\"ost","kdf":"scrypt","N":2,"r":1,"p":1,"salt":"+/8=","data":""}"#
        );
        assert_eq!(KeyFile::from_json(&json).expect("parses"), key);
    }

    #[test]
    fn tolerates_unknown_fields_nulls_and_missing_metadata() {
        let json = br#"{
            "created": null, "username": null, "future": {"x": [1, 2]},
            "kdf": "scrypt", "N": 1024, "r": 8, "p": 1,
            "salt": "AAEC", "data": ""
        }"#;
        let key = KeyFile::from_json(json).expect("parses");
        assert_eq!(key.created, "");
        assert_eq!(key.username, "");
        assert_eq!(key.hostname, "");
        assert_eq!(key.salt, [0, 1, 2]);
        assert!(key.data.is_empty());
    }

    #[test]
    fn base64_accepts_go_trailing_bits_but_requires_padding() {
        let parse = |salt: &str| {
            KeyFile::from_json(
                format!(r#"{{"kdf":"scrypt","N":2,"r":1,"p":1,"salt":"{salt}","data":""}}"#)
                    .as_bytes(),
            )
        };
        assert_eq!(parse("AQ==").expect("canonical").salt, [1]);
        assert_eq!(parse("AR==").expect("trailing bits, as Go").salt, [1]);
        assert!(parse("AQ").is_err(), "missing padding");
        assert!(parse("A===").is_err());
        assert!(parse("AQ==\u{0}").is_err());
    }

    #[test]
    fn malformed_key_files_are_errors() {
        let cases: &[&[u8]] = &[
            b"",
            b"\xff\xfe",
            b"[]",
            br#"{"kdf":"scrypt","N":1024,"r":8,"p":1,"salt":"AA=="}"#,
            br#"{"kdf":"scrypt","N":-1,"r":8,"p":1,"salt":"AA==","data":""}"#,
            br#"{"kdf":"scrypt","N":4294967296,"r":8,"p":1,"salt":"AA==","data":""}"#,
            br#"{"kdf":"scrypt","N":1024.5,"r":8,"p":1,"salt":"AA==","data":""}"#,
            br#"{"kdf":"scrypt","N":1024,"r":8,"p":1,"salt":"%%%","data":""}"#,
            br#"{"kdf":"scrypt","N":1024,"r":8,"p":1,"salt":null,"data":""}"#,
            br#"{"kdf":"scrypt","N":1024,"r":8,"p":1,"salt":"AA==","data":"", "#,
        ];
        for json in cases {
            match KeyFile::from_json(json) {
                Err(Error::Corrupt { what, .. }) => assert_eq!(what, "key file"),
                other => panic!(
                    "{:?}: expected Corrupt, got {other:?}",
                    String::from_utf8_lossy(json)
                ),
            }
        }
    }
}
