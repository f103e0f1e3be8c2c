//! Which packs `check --read-data-subset` reads, with restic's semantics:
//!
//! - `n/t`: the packs whose id's first byte, modulo `t`, is `n - 1`; the `t`
//!   groups `1/t … t/t` together cover every pack exactly once, so they can
//!   be checked on successive days. `t` is at most 256 (one byte).
//! - `x%` (`x.y%` too): a random `x` percent of the packs, at least one.
//! - a size (`500M`, suffixes `b k m g t`, powers of 1024): a random subset
//!   of packs making up about that share of the repository's size.

use std::fmt;
use std::str::FromStr;

use rand::seq::SliceRandom;

use crate::error::{Error, Result};
use crate::id::PackId;

/// The most groups `n/t` can split the packs into: the first id byte.
pub const MAX_BUCKETS: u32 = 256;

/// Which packs to read completely.
#[derive(Clone, Debug, PartialEq)]
pub enum ReadDataSubset {
    /// Every pack.
    All,
    /// Group `n` (1-based) of `total`.
    Bucket { n: u32, total: u32 },
    /// A random share of the packs, in percent (0 < p <= 100).
    Percent(f64),
    /// Random packs adding up to about this many bytes.
    Bytes(u64),
}

impl ReadDataSubset {
    /// The packs to read, out of `packs` (id and size). Random subsets
    /// differ between calls; the order of the result is unspecified.
    pub fn select(&self, packs: &[(PackId, u64)]) -> Result<Vec<PackId>> {
        let ids = || packs.iter().map(|(id, _)| *id);
        Ok(match *self {
            ReadDataSubset::All => ids().collect(),
            ReadDataSubset::Bucket { n, total } => ids()
                .filter(|id| u32::from(id.0 .0[0]) % total == n - 1)
                .collect(),
            ReadDataSubset::Percent(p) => random_share(ids().collect(), p),
            ReadDataSubset::Bytes(bytes) => {
                let repo_size: u64 = packs.iter().map(|(_, size)| size).sum();
                if repo_size == 0 {
                    return Err(Error::InvalidArgument(
                        "cannot read a subset of a repository of size 0".into(),
                    ));
                }
                // Casts: a share of sizes; precision loss is irrelevant.
                let share = bytes.min(repo_size) as f64 / repo_size as f64;
                random_share(ids().collect(), share * 100.0)
            }
        })
    }
}

/// `percent` of `ids` chosen at random, at least one if there are any.
fn random_share(mut ids: Vec<PackId>, percent: f64) -> Vec<PackId> {
    // Cast: the product lies in 0..=ids.len() as percent <= 100.
    let count = ((ids.len() as f64) * percent / 100.0) as usize;
    let count = count.clamp(1.min(ids.len()), ids.len());
    ids.shuffle(&mut rand::thread_rng());
    ids.truncate(count);
    ids
}

impl FromStr for ReadDataSubset {
    type Err = Error;

    /// Parse `n/t`, `x%` or a size, as `--read-data-subset` takes them.
    fn from_str(s: &str) -> Result<Self> {
        let invalid =
            |why: &str| Error::InvalidArgument(format!("--read-data-subset {s:?}: {why}"));
        if let Some((n, total)) = s.split_once('/') {
            let (Ok(n), Ok(total)) = (n.parse::<u32>(), total.parse::<u32>()) else {
                return Err(invalid("want n/t with positive integers n <= t, e.g. 1/5"));
            };
            if n == 0 || total == 0 || n > total {
                return Err(invalid("n/t values must be positive integers, and n <= t"));
            }
            if total > MAX_BUCKETS {
                return Err(invalid(&format!("t must be at most {MAX_BUCKETS}")));
            }
            return Ok(ReadDataSubset::Bucket { n, total });
        }
        if let Some(number) = s.strip_suffix('%') {
            let p: f64 = number
                .parse()
                .map_err(|_| invalid("want a percentage such as 10% or 2.5%"))?;
            if !(p > 0.0 && p <= 100.0) {
                return Err(invalid("x% must be above 0.0% and at most 100.0%"));
            }
            return Ok(ReadDataSubset::Percent(p));
        }
        match parse_size(s) {
            Some(0) => Err(invalid("the size must be above 0")),
            Some(bytes) => Ok(ReadDataSubset::Bytes(bytes)),
            None => Err(invalid(
                "want n/t, x% or a size with an optional suffix b, k, m, g or t",
            )),
        }
    }
}

/// A byte count with an optional binary suffix (`b k m g t`, any case).
pub(crate) fn parse_size(s: &str) -> Option<u64> {
    let (number, unit) = match s.char_indices().last()? {
        (i, 'b' | 'B') => (&s[..i], 1u64),
        (i, 'k' | 'K') => (&s[..i], 1 << 10),
        (i, 'm' | 'M') => (&s[..i], 1 << 20),
        (i, 'g' | 'G') => (&s[..i], 1 << 30),
        (i, 't' | 'T') => (&s[..i], 1 << 40),
        _ => (s, 1),
    };
    number.parse::<u64>().ok()?.checked_mul(unit)
}

impl fmt::Display for ReadDataSubset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadDataSubset::All => f.write_str("all"),
            ReadDataSubset::Bucket { n, total } => write!(f, "{n}/{total}"),
            ReadDataSubset::Percent(p) => write!(f, "{p}%"),
            ReadDataSubset::Bytes(b) => write!(f, "{b}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::Id;

    fn pack(first: u8, n: u8) -> PackId {
        let mut id = [n; 32];
        id[0] = first;
        PackId(Id(id))
    }

    #[test]
    fn parses_restic_forms() {
        assert_eq!(
            "2/5".parse::<ReadDataSubset>().unwrap(),
            ReadDataSubset::Bucket { n: 2, total: 5 }
        );
        assert_eq!(
            "2.5%".parse::<ReadDataSubset>().unwrap(),
            ReadDataSubset::Percent(2.5)
        );
        assert_eq!(
            "10M".parse::<ReadDataSubset>().unwrap(),
            ReadDataSubset::Bytes(10 << 20)
        );
        assert_eq!(
            "1234".parse::<ReadDataSubset>().unwrap(),
            ReadDataSubset::Bytes(1234)
        );
        for bad in [
            "0/5",
            "6/5",
            "1/0",
            "1/257",
            "a/b",
            "1/2/3",
            "0%",
            "101%",
            "x%",
            "",
            "k",
            "0",
            "-1",
            "99999999999999t",
        ] {
            assert!(bad.parse::<ReadDataSubset>().is_err(), "{bad:?} accepted");
        }
        assert!("256/256".parse::<ReadDataSubset>().is_ok());
    }

    #[test]
    fn buckets_partition_the_packs_by_first_byte() {
        let packs: Vec<(PackId, u64)> = (0..=255u8).map(|b| (pack(b, b), 100)).collect();
        let mut seen = Vec::new();
        for n in 1..=3 {
            let mut got = ReadDataSubset::Bucket { n, total: 3 }
                .select(&packs)
                .unwrap();
            assert!(got.iter().all(|p| u32::from(p.0 .0[0]) % 3 == n - 1));
            seen.append(&mut got);
        }
        seen.sort();
        let mut all: Vec<PackId> = packs.iter().map(|p| p.0).collect();
        all.sort();
        assert_eq!(seen, all);
        let one = ReadDataSubset::Bucket { n: 7, total: 256 }
            .select(&packs)
            .unwrap();
        assert_eq!(one, [pack(6, 6)]);
    }

    #[test]
    fn random_shares() {
        let packs: Vec<(PackId, u64)> = (0..200u8).map(|b| (pack(b, b), 10)).collect();
        let got = ReadDataSubset::Percent(10.0).select(&packs).unwrap();
        assert_eq!(got.len(), 20);
        let mut dedup = got.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), 20);
        assert_eq!(
            ReadDataSubset::Percent(0.1).select(&packs).unwrap().len(),
            1
        );
        assert_eq!(ReadDataSubset::All.select(&packs).unwrap().len(), 200);
        // 500 of 2000 bytes: a quarter.
        assert_eq!(ReadDataSubset::Bytes(500).select(&packs).unwrap().len(), 50);
        assert_eq!(
            ReadDataSubset::Bytes(1 << 40).select(&packs).unwrap().len(),
            200
        );
        assert!(ReadDataSubset::Percent(50.0)
            .select(&[])
            .unwrap()
            .is_empty());
        assert!(ReadDataSubset::Bytes(5).select(&[]).is_err());
    }
}
