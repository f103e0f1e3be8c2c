//! Content ids: SHA-256 hashes, and typed newtypes so a pack id is never
//! passed where a blob id is expected.
//!
//! All ids print and parse as 64 lowercase hex digits, and serialize to JSON
//! as such strings, exactly as restic writes them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Length of an id in bytes.
pub const ID_LEN: usize = 32;

/// [`NIBBLE`]'s value for a byte that is not a hex digit.
const INVALID: u8 = 0x80;

/// The value of each hex digit (either case), [`INVALID`] for other bytes.
static NIBBLE: [u8; 256] = {
    let mut t = [INVALID; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// A SHA-256 hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Id(pub [u8; ID_LEN]);

impl Id {
    /// The SHA-256 hash of `data`.
    pub fn hash(data: &[u8]) -> Self {
        Id(Sha256::digest(data).into())
    }

    /// A random id (for config ids and lock/key file names).
    pub fn random() -> Self {
        Id(rand::random())
    }

    /// Parse 64 hex digits.
    /// (Upper case digits are accepted too.) Trees and index files hold
    /// an id or more per entry, so this is a table lookup per digit with
    /// one validity check at the end.
    pub fn from_hex(s: &str) -> Result<Self> {
        let invalid = || Error::InvalidArgument(format!("invalid id {s:?}: want 64 hex digits"));
        let digits = s.as_bytes();
        if digits.len() != 2 * ID_LEN {
            return Err(invalid());
        }
        let mut out = [0u8; ID_LEN];
        // Every table value is a nibble (< 16) or INVALID (high bit set).
        let mut seen = 0u8;
        for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
            let (hi, lo) = (NIBBLE[usize::from(pair[0])], NIBBLE[usize::from(pair[1])]);
            seen |= hi | lo;
            *byte = (hi << 4) | (lo & 0x0f);
        }
        if seen & INVALID != 0 {
            return Err(invalid());
        }
        Ok(Id(out))
    }

    /// 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The first 8 hex digits, as restic shows ids in tables.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }

    /// True if the hex form of this id starts with `prefix`.
    pub fn has_prefix(&self, prefix: &str) -> bool {
        self.to_hex().starts_with(&prefix.to_ascii_lowercase())
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({})", self.short())
    }
}

impl FromStr for Id {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Id::from_hex(s)
    }
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Id::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Id);

        impl $name {
            /// The untyped id.
            pub fn id(&self) -> &Id {
                &self.0
            }
            /// 64 lowercase hex digits.
            pub fn to_hex(&self) -> String {
                self.0.to_hex()
            }
            /// The first 8 hex digits.
            pub fn short(&self) -> String {
                self.0.short()
            }
        }

        impl From<Id> for $name {
            fn from(id: Id) -> Self {
                $name(id)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0.short())
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                Id::from_hex(s).map($name)
            }
        }
    };
}

typed_id!(
    /// The id of a blob (data or tree): SHA-256 of its plaintext.
    BlobId
);
typed_id!(
    /// The id of a tree blob.
    TreeId
);
typed_id!(
    /// The id of a pack file: SHA-256 of its whole (encrypted) content.
    PackId
);
typed_id!(
    /// The id of a snapshot file.
    SnapshotId
);
typed_id!(
    /// The id of an index file.
    IndexId
);
typed_id!(
    /// The id of a key file.
    KeyId
);
typed_id!(
    /// The id of a lock file.
    LockId
);

impl From<TreeId> for BlobId {
    fn from(t: TreeId) -> Self {
        BlobId(t.0)
    }
}

impl From<BlobId> for TreeId {
    fn from(b: BlobId) -> Self {
        TreeId(b.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_of_empty_input() {
        assert_eq!(
            Id::hash(b"").to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn hex_roundtrip_and_json() {
        let id = Id::hash(b"cairn");
        assert_eq!(Id::from_hex(&id.to_hex()).unwrap(), id);
        let json = serde_json::to_string(&BlobId(id)).unwrap();
        assert_eq!(json, format!("\"{}\"", id.to_hex()));
        let back: BlobId = serde_json::from_str(&json).unwrap();
        assert_eq!(back.0, id);
        assert!(Id::from_hex("zz").is_err());
        assert!(id.has_prefix(&id.short()));
    }

    #[test]
    fn from_hex_takes_exactly_64_digits_of_either_case() {
        let hex = Id::hash(b"case").to_hex();
        let id = Id::from_hex(&hex).unwrap();
        assert_eq!(Id::from_hex(&hex.to_uppercase()).unwrap(), id);
        assert_eq!(id.0.to_vec(), hex::decode(&hex).unwrap());
        assert!(Id::from_hex(&hex[..62]).is_err());
        assert!(Id::from_hex(&format!("{hex}00")).is_err());
        assert!(Id::from_hex("").is_err());
        // Any one byte that is not a hex digit, anywhere, is refused.
        for pos in [0, 1, 31, 62, 63] {
            for bad in ["g", "G", " ", "/", ":", "@", "`", "\u{7f}"] {
                let mut s = hex.clone().into_bytes();
                s[pos] = bad.as_bytes()[0];
                let s = String::from_utf8(s).unwrap();
                assert!(Id::from_hex(&s).is_err(), "{s:?}");
            }
        }
        // Multi-byte characters never pass either (64 bytes, not digits).
        let wide = format!("é{}", &hex[2..]);
        assert_eq!(wide.len(), 64);
        assert!(Id::from_hex(&wide).is_err());
    }
}
