//! scrypt: from a password to a user key.
//!
//! restic derives 64 bytes with scrypt(password, salt, N, r, p) and splits
//! them into a [`MasterKey`]-shaped user key: the first 32 bytes are the
//! AES-256 encryption key, the next 16 the Poly1305-AES `k`, the last 16 `r`.
//! The user key only unseals the real master key stored in a key file.
//!
//! Invariant: parameters read from a key file are untrusted, so they are
//! [validated](KdfParams::validate) before scrypt runs: at most
//! [`MAX_N`], at most [`MAX_MEMORY`] bytes of scrypt buffers and at most
//! [`MAX_WORK`] block mixes, instead of allocating gigabytes or spinning for
//! hours on a hostile file.

use rand::rngs::OsRng;
use rand::RngCore;

use super::MasterKey;
use crate::error::{Error, Result};

/// Length of the salt restic generates and requires for new keys.
pub const SALT_LEN: usize = 64;

/// The largest scrypt `N` accepted (restic calibrates to 2^15..2^16).
pub const MAX_N: u32 = 1 << 20;

/// The most memory scrypt may use for one derivation, in bytes: both its
/// table (`128·r·N`) and its blocks (`128·r·p`) must fit.
pub const MAX_MEMORY: u64 = 1 << 30;

/// The most work one derivation may do, as `N·r·p` (restic's calibrated
/// 2^15·8·4 is 2^20; this allows 256 times that).
pub const MAX_WORK: u64 = 1 << 28;

/// scrypt parameters and salt, as stored in a key file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KdfParams {
    /// CPU/memory cost; a power of two, at least 2.
    pub n: u32,
    /// Block size.
    pub r: u32,
    /// Parallelism.
    pub p: u32,
    /// Salt; new keys get [`SALT_LEN`] random bytes.
    pub salt: Vec<u8>,
}

impl Default for KdfParams {
    /// [`KdfParams::recommended`]: note that every call draws a new salt.
    fn default() -> Self {
        KdfParams::recommended()
    }
}

impl KdfParams {
    /// Default cost for new keys: N = 2^15, r = 8, p = 1 (32 MiB; restic
    /// calibrates around this), with a fresh random salt.
    pub fn recommended() -> KdfParams {
        KdfParams::with_random_salt(1 << 15, 8, 1)
    }

    /// Cheap parameters (N = 1024, r = 8, p = 1) for tests and examples.
    /// Much weaker against password guessing: never use them for real data.
    pub fn insecure_fast() -> KdfParams {
        KdfParams::with_random_salt(1024, 8, 1)
    }

    /// Custom cost with a fresh random salt; fails if the cost is invalid or
    /// beyond the limits of [`validate`](Self::validate).
    pub fn new(n: u32, r: u32, p: u32) -> Result<KdfParams> {
        let params = KdfParams::with_random_salt(n, r, p);
        params.validate()?;
        Ok(params)
    }

    fn with_random_salt(n: u32, r: u32, p: u32) -> KdfParams {
        let mut salt = vec![0u8; SALT_LEN];
        OsRng.fill_bytes(&mut salt);
        KdfParams { n, r, p, salt }
    }

    /// Check the cost: `N` a power of two in `2..=MAX_N`, `r, p >= 1`, the
    /// scrypt constraints `N < 2^(16·r)` and `r·p < 2^30`, and the
    /// [`MAX_MEMORY`] and [`MAX_WORK`] limits. The salt is not checked.
    pub fn validate(&self) -> Result<()> {
        self.check().map_err(|reason| Error::Unsupported {
            what: "scrypt parameters".into(),
            value: format!("N={}, r={}, p={}: {reason}", self.n, self.r, self.p),
        })
    }

    fn check(&self) -> std::result::Result<(), &'static str> {
        let (n, r, p) = (u64::from(self.n), u64::from(self.r), u64::from(self.p));
        if self.n < 2 || !self.n.is_power_of_two() {
            return Err("N must be a power of two, at least 2");
        }
        if self.n > MAX_N {
            return Err("N is too large");
        }
        if r == 0 || p == 0 {
            return Err("r and p must be at least 1");
        }
        if u64::from(self.log_n()) >= 16 * r || r * p >= 1 << 30 {
            return Err("outside scrypt's domain");
        }
        // Saturating, so that the checks hold whatever order they come in.
        let memory = 128u64.saturating_mul(r).saturating_mul(n.max(p));
        if memory > MAX_MEMORY {
            return Err("needs too much memory");
        }
        if n.saturating_mul(r).saturating_mul(p) > MAX_WORK {
            return Err("needs too much work");
        }
        Ok(())
    }

    fn log_n(&self) -> u8 {
        // `n` is a nonzero u32, so this is at most 31.
        self.n.trailing_zeros() as u8
    }
}

/// Derive the user key for `password`: scrypt to 64 bytes, split as
/// encryption key (32), MAC `k` (16), MAC `r` (16). The `p` lanes run
/// [`lanes_at_once`] at a time on threads of their own (restic runs them one
/// after another: p = 7 is 0.33 s there, 0.2 s here on two cores).
pub fn derive_user_key(password: &[u8], params: &KdfParams) -> Result<MasterKey> {
    params.validate()?;
    let unsupported = |reason: String| Error::Unsupported {
        what: "scrypt parameters".into(),
        value: reason,
    };
    let scrypt_params = scrypt::Params::new(params.log_n(), params.r, params.p)
        .map_err(|e| unsupported(e.to_string()))?;
    let mut out = [0u8; 64];
    let derive = |out: &mut [u8; 64]| scrypt::scrypt(password, &params.salt, &scrypt_params, out);
    // The crate runs the lanes on the current rayon pool: a pool of our own
    // bounds how many tables exist at once (and its threads end with it).
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(lanes_at_once(params))
        .thread_name(|i| format!("cairn-scrypt-{i}"))
        .build();
    match pool {
        Ok(pool) => pool.install(|| derive(&mut out)),
        Err(_) => derive(&mut out),
    }
    .map_err(|e| unsupported(e.to_string()))?;

    let mut encrypt = [0u8; 32];
    let mut mac_k = [0u8; 16];
    let mut mac_r = [0u8; 16];
    encrypt.copy_from_slice(&out[..32]);
    mac_k.copy_from_slice(&out[32..48]);
    mac_r.copy_from_slice(&out[48..]);
    Ok(MasterKey::from_parts(encrypt, mac_k, mac_r))
}

/// How many lanes of `params` run at once: one per core, at most `p`, and
/// no more tables (`128·r·N` bytes each) than [`MAX_MEMORY`] holds.
pub fn lanes_at_once(params: &KdfParams) -> usize {
    let table = 128u64
        .saturating_mul(u64::from(params.r))
        .saturating_mul(u64::from(params.n));
    let by_memory = usize::try_from(MAX_MEMORY / table.max(1)).unwrap_or(usize::MAX);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cores
        .min(by_memory)
        .min(usize::try_from(params.p).unwrap_or(usize::MAX))
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(n: u32, r: u32, p: u32, salt: &[u8]) -> KdfParams {
        KdfParams {
            n,
            r,
            p,
            salt: salt.to_vec(),
        }
    }

    /// The key as the 64 bytes scrypt produced: encrypt || k || r.
    fn key_bytes(key: &MasterKey) -> String {
        format!(
            "{}{}{}",
            hex::encode(key.encrypt),
            hex::encode(key.mac_k),
            hex::encode(key.mac_r)
        )
    }

    /// RFC 7914, section 12, the two cheap vectors (dkLen = 64, exactly
    /// the length restic derives).
    #[test]
    fn rfc7914_vectors() {
        let key = derive_user_key(b"", &params(16, 1, 1, b"")).expect("derives");
        assert_eq!(
            key_bytes(&key),
            "77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442\
             fcd0069ded0948f8326a753a0fc81f17e8d3e0fb2e0d3628cf35e20c38d18906"
        );
        // p = 16: its lanes run on several threads, yet give the RFC's key.
        let key = derive_user_key(b"password", &params(1024, 8, 16, b"NaCl")).expect("derives");
        assert_eq!(
            key_bytes(&key),
            "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162\
             2eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640"
        );
    }

    #[test]
    fn lanes_run_one_per_core_within_the_memory_limit() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(lanes_at_once(&params(1 << 15, 8, 1, b"s")), 1);
        assert_eq!(lanes_at_once(&params(1 << 15, 8, 7, b"s")), cores.min(7));
        // 1 GiB tables: one at a time, however many lanes and cores.
        assert_eq!(lanes_at_once(&params(1 << 20, 8, 4, b"s")), 1);
        // 512 MiB tables: two fit.
        assert_eq!(
            lanes_at_once(&params(1 << 19, 8, 4, b"s")),
            cores.clamp(1, 2)
        );
    }

    #[test]
    fn password_and_salt_both_matter() {
        let p = params(16, 1, 1, b"salt");
        let a = derive_user_key(b"pw", &p).expect("derives");
        assert_eq!(a, derive_user_key(b"pw", &p).expect("derives"));
        assert_ne!(a, derive_user_key(b"pW", &p).expect("derives"));
        assert_ne!(
            a,
            derive_user_key(b"pw", &params(16, 1, 1, b"Salt")).expect("derives")
        );
    }

    #[test]
    fn constructors() {
        let rec = KdfParams::recommended();
        assert_eq!(
            (rec.n, rec.r, rec.p, rec.salt.len()),
            (32768, 8, 1, SALT_LEN)
        );
        rec.validate().expect("valid");
        let default = KdfParams::default();
        assert_eq!((default.n, default.r, default.p), (rec.n, rec.r, rec.p));
        let fast = KdfParams::insecure_fast();
        assert_eq!(
            (fast.n, fast.r, fast.p, fast.salt.len()),
            (1024, 8, 1, SALT_LEN)
        );
        assert_ne!(rec.salt, fast.salt, "salts are random");
        let custom = KdfParams::new(1 << 16, 8, 2).expect("valid");
        assert_eq!((custom.n, custom.r, custom.p), (1 << 16, 8, 2));
        assert!(KdfParams::new(1000, 8, 1).is_err());
    }

    #[test]
    fn accepts_what_restic_writes() {
        for (n, r, p) in [
            (16384, 8, 1),
            (32768, 8, 4),
            (32768, 8, 5),
            (65536, 8, 1),
            (MAX_N, 8, 1),
        ] {
            params(n, r, p, &[0; 64]).validate().expect("valid");
        }
    }

    #[test]
    fn rejects_absurd_parameters_without_running_scrypt() {
        let cases = [
            (0, 8, 1),
            (1, 8, 1),
            (1000, 8, 1),
            (3, 8, 1),
            (MAX_N * 2, 8, 1),
            (1 << 31, 8, 1),
            (1024, 0, 1),
            (1024, 8, 0),
            (1 << 16, 1, 1),                       // N >= 2^(16 r)
            (2, 1 << 20, 1 << 10),                 // r·p >= 2^30
            (MAX_N, 16, 1),                        // 2 GiB table
            (2, 1, (MAX_MEMORY / 128) as u32 + 1), // huge block buffer
            (1 << 15, 8, 2048),                    // hours of work
            (2, u32::MAX, u32::MAX),
        ];
        for (n, r, p) in cases {
            let bad = params(n, r, p, &[0; 64]);
            match derive_user_key(b"pw", &bad) {
                Err(Error::Unsupported { what, value }) => {
                    assert_eq!(what, "scrypt parameters");
                    assert!(
                        value.starts_with(&format!("N={n}, r={r}, p={p}: ")),
                        "{value}"
                    );
                }
                other => panic!("N={n} r={r} p={p}: expected Unsupported, got {other:?}"),
            }
        }
    }
}
