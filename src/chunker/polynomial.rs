//! Polynomials over GF(2) and the chunker polynomial of a repository.
//!
//! A polynomial is stored as a `u64` whose bit `i` is the coefficient of
//! `x^i`; addition is XOR. restic picks one random irreducible polynomial of
//! degree 53 per repository (the largest prime below 64 − 8, so that a digest
//! shifted left by one byte still fits in 64 bits) and records it in the
//! config file as lowercase hex without a `0x` prefix, e.g. `"3dea92648f6e83"`.
//!
//! Invariant: every [`Polynomial`] value has degree exactly 53 and is
//! irreducible. Only [`Polynomial::new`], parsing and the random constructors
//! create one, and all of them check, so the Rabin tables built from it can
//! rely on the degree.

use std::fmt;
use std::str::FromStr;

use rand::RngCore;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

/// Degree of every chunker polynomial.
pub const DEGREE: u32 = 53;

/// How many random candidates [`Polynomial::random_from`] tries before giving
/// up, as restic does (about one candidate in 27 is irreducible).
const RANDOM_MAX_TRIES: u32 = 1_000_000;

/// An irreducible polynomial of degree 53 over GF(2), as used by restic's
/// Rabin chunker.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Polynomial(u64);

impl Polynomial {
    /// Wrap `value`, checking that it has degree 53 and is irreducible.
    pub fn new(value: u64) -> Result<Self> {
        let deg = degree(value);
        if deg != Some(DEGREE) {
            return Err(Error::InvalidArgument(format!(
                "invalid chunker polynomial {value:x}: degree is {}, want {DEGREE}",
                deg.map_or_else(|| "undefined".to_string(), |d| d.to_string())
            )));
        }
        if !Self::is_irreducible(value) {
            return Err(Error::InvalidArgument(format!(
                "invalid chunker polynomial {value:x}: not irreducible"
            )));
        }
        Ok(Polynomial(value))
    }

    /// The coefficients as bits (bit `i` is the coefficient of `x^i`).
    pub fn value(self) -> u64 {
        self.0
    }

    /// A fresh random irreducible polynomial of degree 53, drawn from the
    /// operating system's CSPRNG exactly as restic's `RandomPolynomial` does.
    ///
    /// Panics only if the operating system's random source fails.
    pub fn random() -> Self {
        let mut rng = rand::rngs::OsRng;
        loop {
            // With a working CSPRNG a hit comes within a few dozen tries; the
            // loop cannot spin forever on a source that is actually random.
            if let Some(p) = Self::candidate(rng.next_u64()) {
                return p;
            }
        }
    }

    /// Like [`Polynomial::random`] but drawing 64-bit candidates from `rng`
    /// (restic's `DerivePolynomial`). Gives up after a million candidates,
    /// which only a broken source can cause.
    pub fn random_from<R: RngCore + ?Sized>(rng: &mut R) -> Result<Self> {
        (0..RANDOM_MAX_TRIES)
            .find_map(|_| Self::candidate(rng.next_u64()))
            .ok_or_else(|| {
                Error::InvalidArgument(
                    "unable to find a random irreducible polynomial: broken random source?".into(),
                )
            })
    }

    /// Turn 64 random bits into a candidate as restic does: keep bits 0..=53,
    /// force bit 53 (degree 53) and bit 0 (not divisible by `x`), and accept
    /// it if it is irreducible.
    fn candidate(raw: u64) -> Option<Self> {
        let f = (raw & ((1 << 54) - 1)) | (1 << DEGREE) | 1;
        Self::is_irreducible(f).then_some(Polynomial(f))
    }

    /// Whether `value`, read as a polynomial over GF(2), is irreducible.
    ///
    /// Ben-Or's test: `f` of degree `d` is irreducible iff
    /// `gcd(f, x^(2^i) − x mod f) = 1` for every `1 ≤ i ≤ d/2`. The constants
    /// 0 and 1 count as irreducible here, as in restic (their degree is < 1).
    pub fn is_irreducible(value: u64) -> bool {
        let Some(deg) = degree(value) else {
            return true;
        };
        const X: u64 = 0b10;
        let mut h = X; // x^(2^i) mod f, starting at i = 0
        for _ in 1..=deg / 2 {
            h = mul_mod(h, h, value);
            if gcd(value, modulo(h ^ X, value)) != 1 {
                return false;
            }
        }
        true
    }
}

impl fmt::Display for Polynomial {
    /// Lowercase hex without prefix, as in restic's config file.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}", self.0)
    }
}

impl fmt::Debug for Polynomial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Polynomial({:#x})", self.0)
    }
}

impl fmt::LowerHex for Polynomial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::LowerHex::fmt(&self.0, f)
    }
}

impl FromStr for Polynomial {
    type Err = Error;

    /// Parse hex digits (either case, no prefix, no sign), as restic's
    /// `strconv.ParseUint(s, 16, 64)`, then validate.
    fn from_str(s: &str) -> Result<Self> {
        // `from_str_radix` alone would also accept a leading `+`.
        if s.is_empty() || s.len() > 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::InvalidArgument(format!(
                "invalid chunker polynomial {s:?}: want up to 16 hex digits"
            )));
        }
        let value = u64::from_str_radix(s, 16).map_err(|e| {
            Error::InvalidArgument(format!("invalid chunker polynomial {s:?}: {e}"))
        })?;
        Polynomial::new(value)
    }
}

impl TryFrom<u64> for Polynomial {
    type Error = Error;
    fn try_from(value: u64) -> Result<Self> {
        Polynomial::new(value)
    }
}

impl From<Polynomial> for u64 {
    fn from(p: Polynomial) -> u64 {
        p.0
    }
}

impl Serialize for Polynomial {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Polynomial {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Degree of `p`, or `None` for the zero polynomial.
pub(crate) fn degree(p: u64) -> Option<u32> {
    (p != 0).then(|| 63 - p.leading_zeros())
}

/// `a mod m` for polynomials; `m` must not be zero.
pub(crate) fn modulo(mut a: u64, m: u64) -> u64 {
    let dm = 63 - m.leading_zeros();
    while a != 0 {
        let da = 63 - a.leading_zeros();
        if da < dm {
            break;
        }
        a ^= m << (da - dm);
    }
    a
}

/// `a · b mod m`, for `a`, `b` already reduced mod `m` (so `deg a < deg m`
/// and `a << 1` cannot overflow).
fn mul_mod(mut a: u64, mut b: u64, m: u64) -> u64 {
    let dm = 63 - m.leading_zeros();
    let top = 1u64 << dm;
    let mut res = 0;
    while b != 0 {
        if b & 1 != 0 {
            res ^= a;
        }
        b >>= 1;
        a <<= 1;
        if a & top != 0 {
            a ^= m;
        }
    }
    res
}

/// Greatest common divisor of two polynomials (Euclid).
fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        let r = modulo(a, b);
        a = b;
        b = r;
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// Trial division by every polynomial of degree 1 ..= deg/2.
    fn irreducible_slow(p: u64) -> bool {
        let half = (63 - p.leading_zeros()) / 2;
        (2u64..(1u64 << (half + 1))).all(|d| modulo(p, d) != 0)
    }

    /// Known answers from restic/chunker's `polynomials_test.go`.
    const IRREDUCIBILITY: &[(u64, bool)] = &[
        (0x38f1e565e288df, false),
        (0x3DA3358B4DC173, true),
        (0x30a8295b9d5c91, false),
        (0x255f4350b962cb, false),
        (0x267f776110a235, false),
        (0x2f4dae10d41227, false),
        (0x2482734cacca49, true),
        (0x312daf4b284899, false),
        (0x29dfb6553d01d1, false),
        (0x3548245eb26257, false),
        (0x3199e7ef4211b3, false),
        (0x362f39017dae8b, false),
        (0x200d57aa6fdacb, false),
        (0x35e0a4efa1d275, false),
        (0x2ced55b026577f, false),
        (0x260b012010893d, false),
        (0x2df29cbcd59e9d, false),
        (0x3f2ac7488bd429, false),
        (0x3e5cb1711669fb, false),
        (0x226d8de57a9959, false),
        (0x3c8de80aaf5835, false),
        (0x2026a59efb219b, false),
        (0x39dfa4d13fb231, false),
        (0x3143d0464b3299, false),
    ];

    #[test]
    fn irreducibility_matches_restic() {
        for &(p, want) in IRREDUCIBILITY {
            assert_eq!(Polynomial::is_irreducible(p), want, "{p:#x}");
            assert_eq!(Polynomial::new(p).is_ok(), want, "{p:#x}");
        }
        // Polynomials from real restic repositories (`restic cat config`).
        for p in [0x2ad6ec33f401f5, 0x22278e305b725f, 0x3dea92648f6e83] {
            assert!(Polynomial::is_irreducible(p), "{p:#x}");
        }
    }

    #[test]
    fn irreducibility_small_cases() {
        // x^2+x+1, x^3+x+1, x^4+x+1 are irreducible; x^2+1 = (x+1)^2,
        // x^4+x^2+1 = (x^2+x+1)^2 and x^2+x = x(x+1) are not.
        for p in [0b111, 0b1011, 0b10011] {
            assert!(Polynomial::is_irreducible(p), "{p:#b}");
        }
        for p in [0b101, 0b10101, 0b110] {
            assert!(!Polynomial::is_irreducible(p), "{p:#b}");
        }
        // Degree 63 has no headroom to spare and must still work.
        assert!(!Polynomial::is_irreducible(1 << 63));
        assert!(!Polynomial::is_irreducible(u64::MAX - 1));
        assert!(Polynomial::is_irreducible((1 << 63) | 0b11)); // x^63 + x + 1
                                                               // Agrees with trial division on every polynomial up to degree 12.
        for p in 2u64..(1 << 13) {
            assert_eq!(Polynomial::is_irreducible(p), irreducible_slow(p), "{p:#b}");
        }
    }

    #[test]
    fn arithmetic() {
        // From polynomials_test.go: (x^3+x^2+1)(x+1) = x^4+x^2+x+1 …
        assert_eq!(mul_mod(0b1101, 0b11, 1 << 20), 0b10111);
        assert_eq!(modulo(0b1_0110_1001, 0b1010), 1);
        assert_eq!(modulo(0b11_0000_1111, 0b10011), 0);
        assert_eq!(gcd(10, 50), 2);
        assert_eq!(gcd(0b1100, 0b101), 0b11);
        assert_eq!(gcd(0x3DA3358B4DC173, 0x230d2259defd), 1);
        assert_eq!(gcd(0x230d2259defd, 0x51b492b3eff2), 0b10011);
        assert_eq!(degree(0x3af4b284899), Some(41));
        assert_eq!(degree(0), None);
    }

    #[test]
    fn parse_and_format() {
        let p: Polynomial = "3dea92648f6e83".parse().unwrap();
        assert_eq!(p.value(), 0x3dea92648f6e83);
        assert_eq!(p.to_string(), "3dea92648f6e83");
        assert_eq!(
            "3DA3358B4DC173".parse::<Polynomial>().unwrap().to_string(),
            "3da3358b4dc173"
        );
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(json, "\"3dea92648f6e83\"");
        assert_eq!(serde_json::from_str::<Polynomial>(&json).unwrap(), p);

        for bad in [
            "",
            "0x3dea92648f6e83",
            "+3dea92648f6e83",
            "3dea92648f6e8g",
            "3dea 92648f6e83",
            "13dea92648f6e8300000",
            "1",
            "ff",
            "38f1e565e288df", // degree 53 but reducible
            "7dea92648f6e83", // degree 54
        ] {
            assert!(bad.parse::<Polynomial>().is_err(), "{bad:?} accepted");
        }
        assert!(serde_json::from_str::<Polynomial>("\"38f1e565e288df\"").is_err());
        assert!(serde_json::from_str::<Polynomial>("17").is_err());
    }

    #[test]
    fn random_polynomials_are_valid() {
        for _ in 0..5 {
            let p = Polynomial::random();
            assert_eq!(degree(p.value()), Some(DEGREE));
            assert!(Polynomial::is_irreducible(p.value()));
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let a = Polynomial::random_from(&mut rng).unwrap();
        let b = Polynomial::random_from(&mut rand::rngs::StdRng::seed_from_u64(7)).unwrap();
        assert_eq!(a, b);
        assert_eq!(degree(a.value()), Some(DEGREE));
        assert_eq!(a.value() & 1, 1);
    }

    #[test]
    fn broken_random_source_is_an_error() {
        /// Always yields zero bits: the candidate x^53 + 1 is reducible.
        struct Zero;
        impl RngCore for Zero {
            fn next_u32(&mut self) -> u32 {
                0
            }
            fn next_u64(&mut self) -> u64 {
                0
            }
            fn fill_bytes(&mut self, dest: &mut [u8]) {
                dest.fill(0)
            }
            fn try_fill_bytes(&mut self, dest: &mut [u8]) -> std::result::Result<(), rand::Error> {
                dest.fill(0);
                Ok(())
            }
        }
        assert!(Polynomial::random_from(&mut Zero).is_err());
    }
}
