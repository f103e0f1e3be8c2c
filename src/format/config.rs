//! The repository `config` file: format version, repository id and the
//! chunker polynomial.
//!
//! Written once by `init`, encrypted but never compressed. Field order and
//! names are restic's; `cairn_chunker` is cairn's own addition, absent
//! unless the repository uses a chunker other than restic's Rabin chunker
//! (restic ignores unknown fields, so it can still read such a repository,
//! though it would chunk new data differently).
//!
//! A `Config` read from a repository is only trusted after
//! [`Config::validate`]: version 1 or 2, a hex polynomial, a known chunker.

use serde::{Deserialize, Serialize};

use super::gojson;
use crate::error::{Error, Result};

/// The repository versions this build reads and writes.
pub const SUPPORTED_VERSIONS: [u32; 2] = [1, 2];

/// `cairn_chunker` value for restic's Rabin chunker (also the default when
/// the field is absent).
pub const CHUNKER_RABIN: &str = "rabin";
/// `cairn_chunker` value for FastCDC.
pub const CHUNKER_FASTCDC: &str = "fastcdc";

/// The decrypted `config` file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// Repository format: 1 (no compression) or 2 (zstd).
    pub version: u32,
    /// Random id of the repository, 64 hex digits.
    pub id: String,
    /// The Rabin polynomial, lowercase hex without leading zeros.
    pub chunker_polynomial: String,
    /// cairn's chunker choice ([`CHUNKER_RABIN`] or [`CHUNKER_FASTCDC`]);
    /// `None` means Rabin, like restic.
    #[serde(
        rename = "cairn_chunker",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub chunker: Option<String>,
}

impl Config {
    /// Check what a repository's config must satisfy before use.
    pub fn validate(&self) -> Result<()> {
        if !SUPPORTED_VERSIONS.contains(&self.version) {
            return Err(Error::Unsupported {
                what: "repository version".into(),
                value: self.version.to_string(),
            });
        }
        self.polynomial()?;
        match self.chunker.as_deref() {
            None | Some(CHUNKER_RABIN | CHUNKER_FASTCDC) => Ok(()),
            Some(other) => Err(Error::Unsupported {
                what: "chunker".into(),
                value: other.to_string(),
            }),
        }
    }

    /// The chunker polynomial as a number (restic parses it as hex, upper
    /// or lower case, without prefix). Irreducibility is the chunker's to
    /// check.
    pub fn polynomial(&self) -> Result<u64> {
        let s = &self.chunker_polynomial;
        let bad = || Error::corrupt("config", format!("invalid chunker_polynomial {s:?}"));
        if s.is_empty() || s.len() > 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        match u64::from_str_radix(s, 16) {
            Ok(0) | Err(_) => Err(bad()),
            Ok(p) => Ok(p),
        }
    }

    /// The JSON restic writes (`json.Marshal`, no trailing newline).
    pub fn to_json(&self) -> Vec<u8> {
        gojson::to_vec(self)
    }

    /// Parse and [`validate`](Self::validate) a decrypted config file.
    pub fn from_json(data: &[u8]) -> Result<Config> {
        let config: Config =
            serde_json::from_slice(data).map_err(|e| Error::corrupt("config", e))?;
        config.validate()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `config` of a repository made by `restic init` (0.14.0).
    const RESTIC_CONFIG: &str = r#"{"version":2,"id":"256086d92faeb19b85081a84bfb5e0986ed845d732630a16dc2a5620524430e5","chunker_polynomial":"39c8e40f2b0b91"}"#;

    #[test]
    fn restic_config_round_trips_exactly() {
        let c = Config::from_json(RESTIC_CONFIG.as_bytes()).unwrap();
        assert_eq!(c.version, 2);
        assert_eq!(c.chunker, None);
        assert_eq!(c.polynomial().unwrap(), 0x39c8e40f2b0b91);
        assert_eq!(c.to_json(), RESTIC_CONFIG.as_bytes());
        assert_eq!(serde_json::to_vec(&c).unwrap(), RESTIC_CONFIG.as_bytes());
    }

    #[test]
    fn cairn_chunker_is_written_last_and_only_when_set() {
        let mut c = Config::from_json(RESTIC_CONFIG.as_bytes()).unwrap();
        c.chunker = Some(CHUNKER_FASTCDC.into());
        let json = String::from_utf8(c.to_json()).unwrap();
        assert!(
            json.ends_with(r#""chunker_polynomial":"39c8e40f2b0b91","cairn_chunker":"fastcdc"}"#)
        );
        assert_eq!(Config::from_json(json.as_bytes()).unwrap(), c);
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let json = r#"{"version":1,"id":"x","chunker_polynomial":"3DA3358B4DC173","future":[1,2]}"#;
        let c = Config::from_json(json.as_bytes()).unwrap();
        assert_eq!(c.polynomial().unwrap(), 0x3da3358b4dc173);
    }

    #[test]
    fn invalid_configs_are_rejected() {
        let with = |version: u32, pol: &str, chunker: Option<&str>| Config {
            version,
            id: "x".into(),
            chunker_polynomial: pol.into(),
            chunker: chunker.map(Into::into),
        };
        for v in [0, 3, 99] {
            let err = with(v, "39c8e40f2b0b91", None).validate().unwrap_err();
            assert!(
                matches!(&err, Error::Unsupported { what, value } if what == "repository version" && *value == v.to_string()),
                "{err}"
            );
        }
        for pol in ["", "0", "+1f", "0x1f", "zz", "12345678901234567"] {
            assert!(
                matches!(with(2, pol, None).validate(), Err(Error::Corrupt { .. })),
                "{pol:?}"
            );
        }
        assert!(matches!(
            with(2, "39c8e40f2b0b91", Some("gear")).validate(),
            Err(Error::Unsupported { .. })
        ));
        for json in [
            "",
            "{",
            "[]",
            r#"{"version":"2"}"#,
            r#"{"version":-1,"id":"","chunker_polynomial":"1"}"#,
        ] {
            assert!(Config::from_json(json.as_bytes()).is_err(), "{json:?}");
        }
    }
}
