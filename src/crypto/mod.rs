//! Encryption and authentication exactly as restic does it.
//!
//! A repository has one [`MasterKey`]: a 32-byte AES-256 key that encrypts,
//! and a Poly1305-AES key (`k`, an AES-128 key, and `r`) that authenticates.
//! Every file and blob is stored as `IV (16) || ciphertext || MAC (16)`
//! ([`CIPHERTEXT_OVERHEAD`] bytes more than the plaintext): AES-256-CTR
//! with a 128-bit big-endian counter starting at the IV, then Poly1305-AES
//! of the ciphertext with the IV as nonce. The master key itself is kept
//! in key files (`keys/<id>`), encrypted with a user key derived from a
//! password by scrypt ([`kdf`]; [`KeyFile::create`](crate::format::key::KeyFile::create)
//! and [`KeyFile::open`](crate::format::key::KeyFile::open)).
//!
//! Invariants:
//! - decryption verifies the MAC (in constant time) before decrypting, so no
//!   unauthenticated byte is ever returned; any failure is the single,
//!   uninformative [`AuthError`];
//! - key material never appears in `Debug` output;
//! - the JSON form of a master key round-trips byte for byte, so `r` is kept
//!   as stored: Poly1305 clamps it when keying, as Go's implementation does.

mod aes_poly1305;
pub mod kdf;
mod key_file;

use std::fmt;

use base64::Engine as _;
use rand::rngs::OsRng;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::format::key::base64_bytes;
use aes_poly1305::{Sealer, IV_LEN, MAC_LEN};

pub use kdf::{derive_user_key, KdfParams};

/// How many bytes encryption adds to a plaintext: the IV and the MAC.
pub const CIPHERTEXT_OVERHEAD: usize = IV_LEN + MAC_LEN;

/// The length of the ciphertext of a `plaintext_len`-byte plaintext.
pub const fn ciphertext_len(plaintext_len: usize) -> usize {
    plaintext_len + CIPHERTEXT_OVERHEAD
}

/// The length of the plaintext inside a `ciphertext_len`-byte ciphertext, or
/// `None` if it is too short to be one.
pub const fn plaintext_len(ciphertext_len: usize) -> Option<usize> {
    ciphertext_len.checked_sub(CIPHERTEXT_OVERHEAD)
}

/// Decryption failed: the data is too short, or its MAC does not verify
/// (wrong key, corruption or tampering). Deliberately says nothing more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AuthError;

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ciphertext verification failed")
    }
}

impl std::error::Error for AuthError {}

/// The Poly1305 clamping mask: which bits of `r` may be set.
const POLY1305_R_MASK: [u8; 16] = [
    0xff, 0xff, 0xff, 0x0f, 0xfc, 0xff, 0xff, 0x0f, 0xfc, 0xff, 0xff, 0x0f, 0xfc, 0xff, 0xff, 0x0f,
];

/// A repository's master key (or a user key derived from a password: the
/// two have the same shape). Cheap to clone; comparing two keys compares
/// their bytes.
#[derive(Clone)]
pub struct MasterKey {
    encrypt: [u8; 32],
    mac_k: [u8; 16],
    mac_r: [u8; 16],
    sealer: Sealer,
}

impl MasterKey {
    /// A new random key from the operating system's CSPRNG. `r` is stored
    /// clamped, as restic has always generated it.
    ///
    /// # Panics
    /// If the operating system cannot provide random bytes.
    pub fn generate() -> MasterKey {
        let mut encrypt = [0u8; 32];
        let mut mac_k = [0u8; 16];
        let mut mac_r = [0u8; 16];
        OsRng.fill_bytes(&mut encrypt);
        OsRng.fill_bytes(&mut mac_k);
        OsRng.fill_bytes(&mut mac_r);
        for (byte, mask) in mac_r.iter_mut().zip(POLY1305_R_MASK) {
            *byte &= mask;
        }
        MasterKey::from_parts(encrypt, mac_k, mac_r)
    }

    /// A key from its three parts: the AES-256 encryption key, and the
    /// Poly1305-AES key `k` (AES-128) and `r` (clamped or not).
    pub fn from_parts(encrypt: [u8; 32], mac_k: [u8; 16], mac_r: [u8; 16]) -> MasterKey {
        let sealer = Sealer::new(&encrypt, &mac_k, &mac_r);
        MasterKey {
            encrypt,
            mac_k,
            mac_r,
            sealer,
        }
    }

    /// Encrypt `plaintext` under a fresh random IV: `IV || ciphertext || MAC`.
    ///
    /// # Panics
    /// If the operating system cannot provide random bytes.
    pub fn encrypt(&self, plaintext: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(ciphertext_len(plaintext.len()));
        self.encrypt_into(plaintext, &mut out);
        out
    }

    /// Like [`encrypt`](Self::encrypt), but append to `out` (e.g. a pack
    /// being assembled).
    ///
    /// # Panics
    /// If the operating system cannot provide random bytes.
    pub fn encrypt_into(&self, plaintext: &[u8], out: &mut Vec<u8>) {
        self.sealer.seal_into(&random_iv(), plaintext, out);
    }

    /// Verify and decrypt `IV || ciphertext || MAC`.
    pub fn decrypt(&self, data: &[u8]) -> Result<Vec<u8>, AuthError> {
        self.sealer.open(data)
    }

    /// Verify and decrypt in place: on success `data` holds the plaintext,
    /// on failure it is unchanged.
    pub fn decrypt_in_place(&self, data: &mut Vec<u8>) -> Result<(), AuthError> {
        self.sealer.open_in_place(data)
    }

    /// Verify and decrypt `IV || ciphertext || MAC` where it lies (e.g.
    /// inside a buffer holding a whole pack range): on success return the
    /// plaintext, a sub-slice of `data`; on failure `data` is unchanged.
    pub fn decrypt_in_slice<'a>(&self, data: &'a mut [u8]) -> Result<&'a mut [u8], AuthError> {
        let body = self.sealer.open_in_slice(data)?;
        Ok(&mut data[body])
    }

    /// The JSON form restic stores inside key files and prints for
    /// `cat masterkey`: `{"mac":{"k":"…","r":"…"},"encrypt":"…"}`, compact
    /// and with standard padded base64, byte for byte as Go writes it.
    pub fn to_json(&self) -> String {
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        // Base64 never needs JSON escaping, so plain formatting is exact.
        format!(
            r#"{{"mac":{{"k":"{}","r":"{}"}},"encrypt":"{}"}}"#,
            b64(&self.mac_k),
            b64(&self.mac_r),
            b64(&self.encrypt)
        )
    }

    /// Parse the JSON form (any valid JSON layout; unknown fields ignored).
    /// Wrong lengths and all-zero keys are errors, as in restic.
    pub fn from_json(json: &[u8]) -> Result<MasterKey> {
        serde_json::from_slice(json).map_err(|e| Error::corrupt("master key", e))
    }
}

/// A fresh IV. An all-zero IV is refused by restic on decryption, so it is
/// never produced (the chance is 2^-128, but it costs nothing to be exact).
fn random_iv() -> [u8; IV_LEN] {
    loop {
        let mut iv = [0u8; IV_LEN];
        OsRng.fill_bytes(&mut iv);
        if iv != [0; IV_LEN] {
            return iv;
        }
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl PartialEq for MasterKey {
    fn eq(&self, other: &Self) -> bool {
        self.encrypt == other.encrypt && self.mac_k == other.mac_k && self.mac_r == other.mac_r
    }
}

impl Eq for MasterKey {}

/// The serde mirror of restic's `crypto.Key` JSON.
#[derive(Serialize, Deserialize)]
struct KeyJson {
    mac: MacKeyJson,
    #[serde(with = "base64_bytes")]
    encrypt: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct MacKeyJson {
    #[serde(with = "base64_bytes")]
    k: Vec<u8>,
    #[serde(with = "base64_bytes")]
    r: Vec<u8>,
}

impl Serialize for MasterKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        KeyJson {
            mac: MacKeyJson {
                k: self.mac_k.to_vec(),
                r: self.mac_r.to_vec(),
            },
            encrypt: self.encrypt.to_vec(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for MasterKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let json = KeyJson::deserialize(d)?;
        let encrypt: [u8; 32] = exact_len("encrypt", json.encrypt).map_err(D::Error::custom)?;
        let mac_k: [u8; 16] = exact_len("mac.k", json.mac.k).map_err(D::Error::custom)?;
        let mac_r: [u8; 16] = exact_len("mac.r", json.mac.r).map_err(D::Error::custom)?;
        // restic's Key.Valid(): neither key may be all zeros.
        if encrypt == [0; 32] || mac_k == [0; 16] || mac_r == [0; 16] {
            return Err(D::Error::custom("key is all zeros"));
        }
        Ok(MasterKey::from_parts(encrypt, mac_k, mac_r))
    }
}

fn exact_len<const N: usize>(field: &str, bytes: Vec<u8>) -> Result<[u8; N], String> {
    let len = bytes.len();
    bytes
        .try_into()
        .map_err(|_| format!("{field} is {len} bytes, want {N}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_key() -> MasterKey {
        MasterKey::from_parts([0x11; 32], [0x22; 16], [0x03; 16])
    }

    #[test]
    fn round_trip_various_lengths() {
        let key = MasterKey::generate();
        for len in [0, 1, 15, 16, 17, 31, 32, 33, 1000, 65536 + 7] {
            let plain: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let sealed = key.encrypt(&plain);
            assert_eq!(sealed.len(), ciphertext_len(len));
            assert_eq!(plaintext_len(sealed.len()), Some(len));
            if len >= 16 {
                assert_ne!(&sealed[IV_LEN..IV_LEN + 16], &plain[..16], "encrypted");
            }
            assert_eq!(key.decrypt(&sealed).expect("decrypts"), plain);
            let mut in_place = sealed.clone();
            key.decrypt_in_place(&mut in_place).expect("decrypts");
            assert_eq!(in_place, plain);
        }
    }

    #[test]
    fn fresh_iv_every_time() {
        let key = test_key();
        let a = key.encrypt(b"same");
        let b = key.encrypt(b"same");
        assert_ne!(a[..IV_LEN], b[..IV_LEN]);
        assert_ne!(a, b);
    }

    #[test]
    fn encrypt_into_appends() {
        let key = test_key();
        let mut out = b"prefix".to_vec();
        key.encrypt_into(b"hello", &mut out);
        assert_eq!(&out[..6], b"prefix");
        assert_eq!(key.decrypt(&out[6..]).expect("decrypts"), b"hello");
    }

    #[test]
    fn any_flipped_bit_is_detected() {
        let key = test_key();
        let sealed = key.encrypt(b"attack at dawn, bring snacks");
        for i in 0..sealed.len() {
            for bit in [0x01, 0x80] {
                let mut bad = sealed.clone();
                bad[i] ^= bit;
                assert_eq!(key.decrypt(&bad), Err(AuthError), "byte {i}");
                let before = bad.clone();
                assert_eq!(key.decrypt_in_place(&mut bad), Err(AuthError));
                assert_eq!(bad, before, "failed in-place decryption leaves data");
            }
        }
    }

    #[test]
    fn truncated_or_extended_input_is_rejected() {
        let key = test_key();
        let sealed = key.encrypt(b"some plaintext");
        for len in 0..sealed.len() {
            assert_eq!(key.decrypt(&sealed[..len]), Err(AuthError), "len {len}");
            assert_eq!(key.decrypt(&sealed[sealed.len() - len..]), Err(AuthError));
        }
        let mut longer = sealed.clone();
        longer.push(0);
        assert_eq!(key.decrypt(&longer), Err(AuthError));
        // The empty plaintext still has a MAC to check.
        assert_eq!(key.decrypt(&key.encrypt(b"")).expect("decrypts"), b"");
        assert_eq!(key.decrypt(&[0u8; 31]), Err(AuthError));
    }

    #[test]
    fn wrong_key_is_rejected() {
        let sealed = test_key().encrypt(b"secret");
        assert_eq!(MasterKey::generate().decrypt(&sealed), Err(AuthError));
        // Same encryption key, different MAC key.
        let other = MasterKey::from_parts([0x11; 32], [0x22; 16], [0x04; 16]);
        assert_eq!(other.decrypt(&sealed), Err(AuthError));
    }

    #[test]
    fn auth_error_display() {
        assert_eq!(AuthError.to_string(), "ciphertext verification failed");
    }

    #[test]
    fn debug_hides_key_material() {
        let key = test_key();
        let debug = format!("{key:?} {:#?}", key);
        assert_eq!(debug, "MasterKey(<redacted>) MasterKey(<redacted>)");
    }

    #[test]
    fn generated_keys_differ_and_r_is_clamped() {
        let a = MasterKey::generate();
        let b = MasterKey::generate();
        assert_ne!(a, b);
        for (byte, mask) in a.mac_r.iter().zip(POLY1305_R_MASK) {
            assert_eq!(byte & !mask, 0);
        }
    }

    /// The master key `restic cat masterkey` printed for the golden
    /// repository used in `key_file` tests.
    const RESTIC_MASTER_KEY: &str = r#"{
  "mac": {
    "k": "vLsuwoqupUGU+f52M51lyw==",
    "r": "j+FXCGCsWw0YPkAOxJTOAg=="
  },
  "encrypt": "KQnjefyzKU/6Y4AdY8T+TlOrUPsX2Ja7WI3waYukpHc="
}"#;

    #[test]
    fn json_matches_restic() {
        let key = MasterKey::from_json(RESTIC_MASTER_KEY.as_bytes()).expect("parses");
        assert_eq!(
            key.to_json(),
            r#"{"mac":{"k":"vLsuwoqupUGU+f52M51lyw==","r":"j+FXCGCsWw0YPkAOxJTOAg=="},"encrypt":"KQnjefyzKU/6Y4AdY8T+TlOrUPsX2Ja7WI3waYukpHc="}"#
        );
        // serde output is the same document.
        assert_eq!(
            serde_json::to_string(&key).expect("serializes"),
            key.to_json()
        );
        let pretty = serde_json::to_string_pretty(&key).expect("serializes");
        assert_eq!(pretty, RESTIC_MASTER_KEY);
    }

    #[test]
    fn json_round_trip_keeps_unclamped_r() {
        let key = MasterKey::from_parts([0xaa; 32], [0xbb; 16], [0xff; 16]);
        let back = MasterKey::from_json(key.to_json().as_bytes()).expect("parses");
        assert_eq!(back, key);
        assert_eq!(back.mac_r, [0xff; 16]);
        let sealed = key.encrypt(b"x");
        assert_eq!(back.decrypt(&sealed).expect("same key"), b"x");
    }

    #[test]
    fn json_tolerates_unknown_fields() {
        let json = r#"{"extra":1,"mac":{"k":"vLsuwoqupUGU+f52M51lyw==","r":"j+FXCGCsWw0YPkAOxJTOAg==","x":[]},"encrypt":"KQnjefyzKU/6Y4AdY8T+TlOrUPsX2Ja7WI3waYukpHc="}"#;
        MasterKey::from_json(json.as_bytes()).expect("parses");
    }

    #[test]
    fn malformed_json_is_an_error() {
        let k16 = "vLsuwoqupUGU+f52M51lyw==";
        let k32 = "KQnjefyzKU/6Y4AdY8T+TlOrUPsX2Ja7WI3waYukpHc=";
        let zero16 = "AAAAAAAAAAAAAAAAAAAAAA==";
        let cases = [
            String::new(),
            "null".into(),
            "[]".into(),
            "{".into(),
            format!(r#"{{"mac":{{"k":"{k16}","r":"{k16}"}}}}"#),
            format!(r#"{{"mac":{{"k":"{k16}"}},"encrypt":"{k32}"}}"#),
            format!(r#"{{"mac":{{"k":"{k16}","r":"{k32}"}},"encrypt":"{k32}"}}"#),
            format!(r#"{{"mac":{{"k":"{k16}","r":"{k16}"}},"encrypt":"{k16}"}}"#),
            format!(r#"{{"mac":{{"k":"{k16}","r":"{k16}"}},"encrypt":"not base64!"}}"#),
            format!(r#"{{"mac":{{"k":"{k16}","r":"{k16}"}},"encrypt":42}}"#),
            format!(r#"{{"mac":{{"k":"{zero16}","r":"{k16}"}},"encrypt":"{k32}"}}"#),
            format!(r#"{{"mac":{{"k":"{k16}","r":"{zero16}"}},"encrypt":"{k32}"}}"#),
        ];
        for json in cases {
            match MasterKey::from_json(json.as_bytes()) {
                Err(Error::Corrupt { what, .. }) => assert_eq!(what, "master key"),
                other => panic!("{json}: expected Corrupt, got {other:?}"),
            }
        }
    }
}
