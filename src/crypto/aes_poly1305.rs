//! The authenticated encryption restic uses: AES-256 in CTR mode, then
//! Poly1305-AES over the ciphertext (encrypt-then-MAC).
//!
//! A sealed message is `IV (16) || ciphertext || MAC (16)`, where
//! - the ciphertext is the plaintext XORed with the AES-256 keystream of a
//!   128-bit big-endian counter that starts at the IV and wraps modulo 2^128
//!   (Go's `cipher.NewCTR`);
//! - the MAC is Poly1305 over the ciphertext alone, keyed with `r` and
//!   `s = AES-128_k(IV)` (D. J. Bernstein's Poly1305-AES, nonce = IV).
//!
//! Invariants: the MAC is checked, in constant time, before a single byte is
//! decrypted; an all-zero IV is refused on opening, as restic refuses it.
//! Only the RustCrypto primitives compute anything here: this module merely
//! wires them together.

use std::ops::Range;

use aes::cipher::{BlockEncrypt, InnerIvInit, KeyInit, StreamCipher};
use aes::{Aes128, Aes256};
use poly1305::universal_hash::UniversalHash;
use poly1305::Poly1305;

use super::AuthError;

/// Length of the IV (the AES block size) that starts every sealed message.
pub(super) const IV_LEN: usize = 16;
/// Length of the Poly1305 tag that ends every sealed message.
pub(super) const MAC_LEN: usize = 16;

/// AES-256-CTR with a 128-bit big-endian counter, as Go's `cipher.NewCTR`.
type Aes256Ctr = ctr::Ctr128BE<Aes256>;
type Aes256CtrCore = ctr::CtrCore<Aes256, ctr::flavors::Ctr128BE>;

/// The expanded keys of one master key: AES-256 for encryption, AES-128 and
/// `r` for Poly1305-AES.
#[derive(Clone)]
pub(super) struct Sealer {
    encrypt: Aes256,
    mac_k: Aes128,
    mac_r: [u8; 16],
}

impl Sealer {
    /// Expand the raw keys. `mac_r` may be unclamped: Poly1305 clamps it.
    pub(super) fn new(encrypt: &[u8; 32], mac_k: &[u8; 16], mac_r: &[u8; 16]) -> Self {
        Sealer {
            encrypt: Aes256::new(encrypt.into()),
            mac_k: Aes128::new(mac_k.into()),
            mac_r: *mac_r,
        }
    }

    /// XOR `buf` with the keystream that starts at counter block `iv`.
    fn apply_keystream(&self, iv: &[u8; IV_LEN], buf: &mut [u8]) {
        self.cipher(iv).apply_keystream(buf);
    }

    /// A Poly1305-AES state for nonce `iv`.
    fn mac_start(&self, iv: &[u8; IV_LEN]) -> Mac {
        let mut key = [0u8; 32];
        key[..16].copy_from_slice(&self.mac_r);
        let (_, s) = key.split_at_mut(16);
        self.mac_k
            .encrypt_block_b2b(iv.into(), aes::Block::from_mut_slice(s));
        Mac(Poly1305::new(&key.into()))
    }

    /// Poly1305-AES of `msg` under nonce `iv`.
    #[cfg(test)]
    fn mac(&self, iv: &[u8; IV_LEN], msg: &[u8]) -> [u8; MAC_LEN] {
        self.mac_start(iv).finish(msg)
    }

    /// The keystream cipher starting at counter block `iv`.
    fn cipher(&self, iv: &[u8; IV_LEN]) -> Aes256Ctr {
        Aes256Ctr::from_core(Aes256CtrCore::inner_iv_init(
            self.encrypt.clone(),
            iv.into(),
        ))
    }

    /// Append `iv || AES-CTR(plaintext) || MAC` to `out`.
    ///
    /// One pass over the data: each segment is copied, encrypted and
    /// MACed while it is in the L1 cache.
    pub(super) fn seal_into(&self, iv: &[u8; IV_LEN], plaintext: &[u8], out: &mut Vec<u8>) {
        out.reserve(IV_LEN + plaintext.len() + MAC_LEN);
        out.extend_from_slice(iv);
        let mut cipher = self.cipher(iv);
        let mut mac = self.mac_start(iv);
        let (segments, last) = split_segments(plaintext);
        for segment in segments.chunks_exact(SEGMENT) {
            let start = out.len();
            out.extend_from_slice(segment);
            cipher.apply_keystream(&mut out[start..]);
            mac.update(&out[start..]);
        }
        let start = out.len();
        out.extend_from_slice(last);
        cipher.apply_keystream(&mut out[start..]);
        let tag = mac.finish(&out[start..]);
        out.extend_from_slice(&tag);
    }

    /// Verify and decrypt `data`, returning a new plaintext buffer.
    ///
    /// One pass over the data: each segment is MACed and decrypted into
    /// the output while it is in the L1 cache; the output is dropped, never
    /// returned, if the MAC turns out wrong.
    pub(super) fn open(&self, data: &[u8]) -> Result<Vec<u8>, AuthError> {
        let (iv, ciphertext, tag) = split_sealed(data)?;
        let mut cipher = self.cipher(&iv);
        let mut mac = self.mac_start(&iv);
        let mut plaintext = vec![0u8; ciphertext.len()];
        let (segments, last) = split_segments(ciphertext);
        let (out_segments, out_last) = plaintext.split_at_mut(segments.len());
        for (segment, out) in segments
            .chunks_exact(SEGMENT)
            .zip(out_segments.chunks_exact_mut(SEGMENT))
        {
            mac.update(segment);
            cipher
                .apply_keystream_b2b(segment, out)
                .map_err(|_| AuthError)?;
        }
        if !ct_eq(&mac.finish(last), &tag) {
            return Err(AuthError);
        }
        cipher
            .apply_keystream_b2b(last, out_last)
            .map_err(|_| AuthError)?;
        Ok(plaintext)
    }

    /// Verify and decrypt `data` in place; on success `data` holds exactly
    /// the plaintext, on failure it is left untouched.
    pub(super) fn open_in_place(&self, data: &mut Vec<u8>) -> Result<(), AuthError> {
        let body = self.open_in_slice(data)?;
        data.truncate(body.end);
        data.drain(..body.start);
        Ok(())
    }

    /// Verify and decrypt the sealed message `data` where it lies; on
    /// success return where in `data` the plaintext is, on failure leave
    /// `data` untouched.
    ///
    /// One pass, as [`open`](Self::open): segments are decrypted as they
    /// are MACed, and on a wrong MAC the keystream is applied once more,
    /// which restores the ciphertext.
    pub(super) fn open_in_slice(&self, data: &mut [u8]) -> Result<Range<usize>, AuthError> {
        let (iv, ciphertext, tag) = split_sealed(data)?;
        let body = IV_LEN..IV_LEN + ciphertext.len();
        let mut cipher = self.cipher(&iv);
        let mut mac = self.mac_start(&iv);
        let split = body.start + split_segments(ciphertext).0.len();
        for segment in data[body.start..split].chunks_exact_mut(SEGMENT) {
            mac.update(segment);
            cipher.apply_keystream(segment);
        }
        if !ct_eq(&mac.finish(&data[split..body.end]), &tag) {
            self.apply_keystream(&iv, &mut data[body.start..split]);
            return Err(AuthError);
        }
        cipher.apply_keystream(&mut data[split..body.end]);
        Ok(body)
    }
}

/// Bytes processed at once by the one-pass seal and open: small enough to
/// stay in the L1 cache between the cipher and the MAC, a multiple of the
/// Poly1305 block.
const SEGMENT: usize = 16 * 1024;

/// Split `data` into whole [`SEGMENT`]s and a last, shorter piece (which
/// may be empty), so that only the last piece can end in a partial
/// Poly1305 block.
fn split_segments(data: &[u8]) -> (&[u8], &[u8]) {
    data.split_at(data.len() / SEGMENT * SEGMENT)
}

/// The parts of a sealed message.
type Parts<'a> = ([u8; IV_LEN], &'a [u8], [u8; MAC_LEN]);

/// `IV || ciphertext || MAC` into its parts; an all-zero IV is refused.
fn split_sealed(data: &[u8]) -> Result<Parts<'_>, AuthError> {
    let body_len = data.len().checked_sub(IV_LEN + MAC_LEN).ok_or(AuthError)?;
    let (iv, rest) = data.split_at(IV_LEN);
    let (ciphertext, tag) = rest.split_at(body_len);
    let iv: [u8; IV_LEN] = iv.try_into().map_err(|_| AuthError)?;
    let tag: [u8; MAC_LEN] = tag.try_into().map_err(|_| AuthError)?;
    if iv == [0; IV_LEN] {
        return Err(AuthError);
    }
    Ok((iv, ciphertext, tag))
}

/// Incremental Poly1305: whole blocks through the crate's multi-block
/// (AVX2) path, which is about twice as fast as its block-at-a-time
/// `compute_unpadded`; only the final partial block goes the slow way.
struct Mac(Poly1305);

impl Mac {
    /// Add `data`, a whole number of 16-byte blocks.
    fn update(&mut self, data: &[u8]) {
        debug_assert_eq!(data.len() % 16, 0);
        self.0.update_padded(data);
    }

    /// Add `data` (any length, unpadded) and return the tag.
    fn finish(mut self, data: &[u8]) -> [u8; MAC_LEN] {
        let (blocks, tail) = data.split_at(data.len() / 16 * 16);
        self.0.update_padded(blocks);
        self.0.compute_unpadded(tail).into()
    }
}

/// Constant-time equality of two tags: the time taken does not depend on
/// where (or whether) they differ.
fn ct_eq(a: &[u8; MAC_LEN], b: &[u8; MAC_LEN]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex<const N: usize>(s: &str) -> [u8; N] {
        let mut out = [0u8; N];
        hex::decode_to_slice(s, &mut out).expect("test vector hex");
        out
    }

    /// Poly1305-AES test vectors from D. J. Bernstein, "The Poly1305-AES
    /// message-authentication code" (2005), appendix B; restic's own
    /// crypto tests use the same four. Columns: message, r, k, nonce, MAC.
    const POLY1305_AES: [(&str, &str, &str, &str, &str); 4] = [
        (
            "f3f6",
            "851fc40c3467ac0be05cc20404f3f700",
            "ec074c835580741701425b623235add6",
            "fb447350c4e868c52ac3275cf9d4327e",
            "f4c633c3044fc145f84f335cb81953de",
        ),
        (
            "",
            "a0f3080000f46400d0c7e9076c834403",
            "75deaa25c09f208e1dc4ce6b5cad3fbf",
            "61ee09218d29b0aaed7e154a2c5509cc",
            "dd3fab2251f11ac759f0887129cc2ee7",
        ),
        (
            "663cea190ffb83d89593f3f476b6bc24d7e679107ea26adb8caf6652d0656136",
            "48443d0bb0d21109c89a100b5ce2c208",
            "6acb5f61a7176dd320c5c1eb2edcdc74",
            "ae212a55399729595dea458bc621ff0e",
            "0ee1c16bb73f0f4fd19881753c01cdbe",
        ),
        (
            "ab0812724a7f1e342742cbed374d94d136c6b8795d45b3819830f2c04491faf0\
             990c62e48b8018b2c3e4a0fa3134cb67fa83e158c994d961c4cb21095c1bf9",
            "12976a08c4426d0ce8a82407c4f48207",
            "e1a5668a4d5b66a5f68cc5424ed5982d",
            "9ae831e743978d3a23527c7128149e3a",
            "5154ad0d2cb26e01274fc51148491f1b",
        ),
    ];

    #[test]
    fn poly1305_aes_paper_vectors() {
        for (msg, r, k, nonce, mac) in POLY1305_AES {
            let sealer = Sealer::new(&[7; 32], &unhex(k), &unhex(r));
            let msg = hex::decode(msg).expect("hex");
            assert_eq!(sealer.mac(&unhex(nonce), &msg), unhex::<16>(mac), "r={r}");
        }
    }

    /// NIST SP 800-38A, F.5.5 CTR-AES256.Encrypt.
    const NIST_KEY: &str = "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4";

    #[test]
    fn aes256_ctr_nist_sp800_38a_f55() {
        let sealer = Sealer::new(&unhex(NIST_KEY), &[1; 16], &[1; 16]);
        let mut buf = hex::decode(
            "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51\
             30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710",
        )
        .expect("hex");
        sealer.apply_keystream(&unhex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff"), &mut buf);
        assert_eq!(
            hex::encode(&buf),
            "601ec313775789a5b7a7f504bbf3d228f443e3ca4d62b59aca84e990cacaf5c5\
             2b0930daa23de94ce87017ba2d84988ddfc9c58db67aada613c2dd08457941a6"
        );
    }

    /// The counter is one 128-bit big-endian integer: it carries across the
    /// 64-bit boundary and wraps to zero, as Go's `cipher.NewCTR` does.
    /// Expected keystreams computed with `openssl enc -aes-256-ctr`.
    #[test]
    fn aes256_ctr_counter_is_128_bit_and_wraps() {
        let sealer = Sealer::new(&unhex(NIST_KEY), &[1; 16], &[1; 16]);
        let cases = [
            (
                "ffffffffffffffffffffffffffffffff",
                "3b3c2921c85a24de9ac606ce6d1d60cce568f68194cf76d6174d4cc04310a854\
                 91151e5d0b7a1f1bc0d7acd0ae3e51e4",
            ),
            (
                "0000000000000000ffffffffffffffff",
                "289e23e13ec8c34291f27c4ccf3eaa29579be1a0d892238805feb810a4a10aaa\
                 51ffb50816f5e9fa954d2604f081f8dc",
            ),
        ];
        for (iv, keystream) in cases {
            let mut buf = [0u8; 48];
            sealer.apply_keystream(&unhex(iv), &mut buf);
            assert_eq!(hex::encode(buf), keystream, "iv={iv}");
        }
    }

    /// A message sealed by restic's Go code (from its crypto tests).
    #[test]
    fn opens_restic_sealed_message() {
        let sealer = Sealer::new(
            &unhex("303e8687b1d7db18421bdc6bb8588ccadac4d59ee87b8ff70c44e635790cafef"),
            &unhex("ef4d8824cb80b2bcc5fbff8a9b12a42c"),
            // Not clamped: byte 3 has its top bits set. Poly1305 clamps.
            &unhex("cc8d4b948ee0ebfe1d415de921d10353"),
        );
        let sealed = hex::decode(
            "69fb41c62d12def4593bd71757138606338f621aeaeb39da0fe4f99233f8037a\
             54ea63338a813bcf3f75d8c3cc75dddf8750",
        )
        .expect("hex");
        assert_eq!(sealer.open(&sealed).expect("opens"), b"Dies ist ein Test!");

        // Sealing again with the same IV reproduces restic's bytes exactly.
        let iv: [u8; 16] = sealed[..16].try_into().expect("iv");
        let mut resealed = Vec::new();
        sealer.seal_into(&iv, b"Dies ist ein Test!", &mut resealed);
        assert_eq!(resealed, sealed);
    }

    #[test]
    fn zero_iv_is_refused() {
        let sealer = Sealer::new(&[3; 32], &[4; 16], &[5; 16]);
        let mut sealed = Vec::new();
        sealer.seal_into(&[0; 16], b"data", &mut sealed);
        assert_eq!(sealer.open(&sealed), Err(AuthError));
    }

    #[test]
    fn ct_eq_compares_every_byte() {
        let a = [9u8; 16];
        assert!(ct_eq(&a, &a));
        for i in 0..16 {
            let mut b = a;
            b[i] ^= 0x80;
            assert!(!ct_eq(&a, &b), "byte {i}");
        }
    }

    /// The one-pass seal and open agree with the two-pass definition (whole
    /// keystream, then Poly1305 over the whole ciphertext) at every length
    /// around block and segment boundaries, and a wrong MAC leaves an
    /// in-place buffer untouched.
    #[test]
    fn one_pass_matches_the_definition() {
        let sealer = Sealer::new(&[9; 32], &[4; 16], &[5; 16]);
        let iv = [0xa5; IV_LEN];
        for len in [
            0,
            1,
            15,
            16,
            17,
            4095,
            SEGMENT - 1,
            SEGMENT,
            SEGMENT + 1,
            3 * SEGMENT + 33,
        ] {
            let plaintext: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
            let mut sealed = Vec::new();
            sealer.seal_into(&iv, &plaintext, &mut sealed);

            let mut ciphertext = plaintext.clone();
            sealer.apply_keystream(&iv, &mut ciphertext);
            let mut key = [0u8; 32];
            key[..16].copy_from_slice(&[5; 16]);
            Aes128::new(&[4; 16].into())
                .encrypt_block_b2b((&iv).into(), aes::Block::from_mut_slice(&mut key[16..]));
            let tag: [u8; MAC_LEN] = Poly1305::new(&key.into())
                .compute_unpadded(&ciphertext)
                .into();
            assert_eq!(sealed, [&iv[..], &ciphertext, &tag].concat(), "len {len}");

            assert_eq!(sealer.open(&sealed), Ok(plaintext.clone()), "len {len}");
            let mut in_place = sealed.clone();
            assert_eq!(sealer.open_in_place(&mut in_place), Ok(()), "len {len}");
            assert_eq!(in_place, plaintext, "len {len}");
            let mut in_slice = sealed.clone();
            let body = sealer.open_in_slice(&mut in_slice).expect("opens");
            assert_eq!(&in_slice[body], &plaintext[..], "len {len}");

            for at in [IV_LEN, sealed.len() / 2, sealed.len() - 1] {
                let mut bad = sealed.clone();
                bad[at] ^= 1;
                assert_eq!(sealer.open(&bad), Err(AuthError), "len {len}, flip at {at}");
                let before = bad.clone();
                assert_eq!(sealer.open_in_place(&mut bad), Err(AuthError), "len {len}");
                assert_eq!(bad, before, "len {len}: a failed open changed the buffer");
                assert_eq!(sealer.open_in_slice(&mut bad), Err(AuthError), "len {len}");
                assert_eq!(bad, before, "len {len}: a failed open changed the slice");
            }
        }
    }
}
