//! Sealing a master key into a [`KeyFile`] under a password, and opening it.
//!
//! A key file's `data` is the master key's JSON sealed (exactly like any
//! repository file) with the user key that scrypt derives from the password
//! and the file's `N`, `r`, `p` and `salt`. Opening derives the user key and
//! checks the MAC: a mismatch means the password is wrong for this key file.
//!
//! Invariants: only `kdf = "scrypt"` is accepted; scrypt parameters are
//! validated before use (see [`KdfParams::validate`]); new key files get a
//! [`SALT_LEN`]-byte salt, the only length restic opens.

use std::fmt::Write as _;

use chrono::{DateTime, FixedOffset, Timelike};

use super::kdf::{derive_user_key, KdfParams, SALT_LEN};
use super::MasterKey;
use crate::error::{Error, Result};
use crate::format::key::KeyFile;

/// The only key derivation function restic knows.
const KDF_SCRYPT: &str = "scrypt";

impl KeyFile {
    /// Seal `master` under `password` with scrypt `params` (see
    /// [`KdfParams::recommended`]), recording `username`, `hostname` and the
    /// current local time.
    pub fn create(
        master: &MasterKey,
        password: &[u8],
        params: KdfParams,
        username: impl Into<String>,
        hostname: impl Into<String>,
    ) -> Result<KeyFile> {
        if params.salt.len() != SALT_LEN {
            return Err(Error::InvalidArgument(format!(
                "scrypt salt is {} bytes; restic requires {SALT_LEN}",
                params.salt.len()
            )));
        }
        let user_key = derive_user_key(password, &params)?;
        let data = user_key.encrypt(master.to_json().as_bytes());
        Ok(KeyFile {
            created: go_rfc3339_nano(&chrono::Local::now().fixed_offset()),
            username: username.into(),
            hostname: hostname.into(),
            kdf: KDF_SCRYPT.to_owned(),
            n: params.n,
            r: params.r,
            p: params.p,
            salt: params.salt,
            data,
        })
    }

    /// The scrypt parameters and salt recorded in this key file.
    pub fn kdf_params(&self) -> KdfParams {
        KdfParams {
            n: self.n,
            r: self.r,
            p: self.p,
            salt: self.salt.clone(),
        }
    }

    /// Unseal the master key with `password`.
    ///
    /// # Errors
    /// [`Error::WrongPassword`] if the MAC does not verify (or `data` is too
    /// short to hold one); [`Error::Unsupported`] for a kdf other than scrypt
    /// or parameters beyond our limits; [`Error::Corrupt`] if the unsealed
    /// master key is malformed.
    pub fn open(&self, password: &[u8]) -> Result<MasterKey> {
        if self.kdf != KDF_SCRYPT {
            return Err(Error::Unsupported {
                what: "key derivation function".into(),
                value: self.kdf.clone(),
            });
        }
        let user_key = derive_user_key(password, &self.kdf_params())?;
        let json = user_key
            .decrypt(&self.data)
            .map_err(|_| Error::WrongPassword)?;
        MasterKey::from_json(&json)
    }
}

/// Format `t` as Go's `time.RFC3339Nano` (what `encoding/json` writes for a
/// `time.Time`): fractional seconds without trailing zeros (none if zero),
/// and `Z` for a zero offset.
fn go_rfc3339_nano(t: &DateTime<FixedOffset>) -> String {
    let mut out = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    // chrono represents a leap second as nanosecond >= 1e9; Go cannot.
    let nanos = t.nanosecond() % 1_000_000_000;
    if nanos != 0 {
        let digits = format!("{nanos:09}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
    let offset = t.offset().local_minus_utc();
    if offset == 0 {
        out.push('Z');
    } else {
        let sign = if offset < 0 { '-' } else { '+' };
        let minutes = offset.unsigned_abs() / 60;
        // Writing to a String cannot fail.
        let _ = write!(out, "{sign}{:02}:{:02}", minutes / 60, minutes % 60);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::Id;
    use base64::Engine as _;

    const RESTIC_PASSWORD: &[u8] = b"cairn-golden";

    /// Made once with restic 0.14.0: `RESTIC_PASSWORD=cairn-golden restic
    /// init --repository-version N`. Columns: the key file's name, the key
    /// file, the encrypted `config` file (base64), and its plaintext as
    /// `restic cat config` showed it.
    const RESTIC_REPOS: [(&str, &str, &str, &str); 2] = [
        (
            "da7a83954b3f8fa5bc9139beaeb54eacb6ade099e12f702b6607afc605f4cd2a",
            r#"{"created":"2026-11-23T14:41:33.1359768Z","username":"root","hostname":"vm","kdf":"scrypt","N":32768,"r":8,"p":4,"salt":"vxA5UuldRumpFkop1Z88tl1/7UjOtc0Qn/feECCgYdTLTTZ5WEQ4Y9r7g+jCiPG1I6AkgdjM721hA0a8DX8EQw==","data":"LB28zCHZ5AR+lkR6NdoSwFas/qJZ763PBdpBPzUcJELJ+Lm+tLxY4keXmL1fbRTbEnulx1jp5QZ3uG2TBqsoika3UrA1YxIcM4TxRgO95dAOME7YZWgDmsbfEmByLqvPJS9pAMAqnhU/9IjrVeWduzRPo9s47LNKm4qlimIK2q8YHvjwaXNWKN/HJexYlOSDFXOvlNRXeHSYaWsKnDI4YA=="}"#,
            "sFuRwlnVnV/SuaU4Qvqon2G2p1DcVRH5oVF1PaPc2PqZm8AND9Aql2vb+J0AoyzhPODR0cuvZWtXeOCh1erHLA5yWxnUUAyodGEuAOni7NVOLTWiCQtNeDgEmKq8v498X30doBH0ecBLIE/PWWBvGZjqQS7ZMVtq9C3C2NqKhMzJKxLCiuynxxleQoB7XTn4bz5np3NMnEsDB3U=",
            r#"{"version":1,"id":"71337123cefdf3944bbedd8eabd776ca177e3262330a4732dd41818bd36a2824","chunker_polynomial":"20d1a01de262a7"}"#,
        ),
        (
            "d7f89be32c3b5e2846ee786ac4f046082be63a522918f3a014ceb1fbe15b6e79",
            r#"{"created":"2026-11-23T14:41:35.685356813Z","username":"root","hostname":"vm","kdf":"scrypt","N":32768,"r":8,"p":5,"salt":"HbXZv/VfMgYy5dDYRv3mTTxmO+nnivcrhL13oQ4DAMr6W3cvrKMPKClzePmK19fZQf3PBXfCYfaddLfjXrcSaA==","data":"98U2AnCqolhyUnHbN9M5KbeOzCBzClexz0M1UTPkCZ6UQYMbbnPnLcFM57txYv/gsbM9l/r1x/+Z2lE6TKDYouITmWPuuPmswrBJkjuhdN8E8sy51gO4WYYQr3ttarXHD185WO4xFxeBMnX5otfJMyjnBVO967mgnpjVyas2lOIZ0IoxULF/k2DlaIPMtxrX8VbV8y4o+3Ddzn4DKtLDnw=="}"#,
            "NQKmT6YNRMLsjbKMQJnpsnUadPDxXnPq1ubD/5y1UKvl7wAtZbIS0RHAnwEBZKhG+E315MUfMa4Wl+7Vd/jPUZbDtsA/GWQpjimwxvZIWmohMWbx+2YKWkRV54olR2GsehY7qRFx+uBv2/RHLZszYOs7ItQMYCl4RnMsDC73Y9xEpG1VWL9acmk5ngrN4N8TAPiGEkAi/uMZR0g=",
            r#"{"version":2,"id":"76b6105eaa014c1be8cf2dc2e1ae96e1ba6012220b336c95edc501374907031d","chunker_polynomial":"26c046fa5cda6f"}"#,
        ),
    ];

    /// The master key of the first repository, from `restic cat masterkey`.
    const RESTIC_MASTER_KEY_1: &str = r#"{"mac":{"k":"vLsuwoqupUGU+f52M51lyw==","r":"j+FXCGCsWw0YPkAOxJTOAg=="},"encrypt":"KQnjefyzKU/6Y4AdY8T+TlOrUPsX2Ja7WI3waYukpHc="}"#;

    fn b64(s: &str) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .expect("test base64")
    }

    /// The interop proof: our scrypt, key unsealing and decryption read
    /// what restic wrote.
    #[test]
    fn opens_restic_key_files_and_decrypts_their_config() {
        for (i, (name, key_json, config, config_plain)) in RESTIC_REPOS.iter().enumerate() {
            assert_eq!(Id::hash(key_json.as_bytes()).to_hex(), *name);
            let key_file = KeyFile::from_json(key_json.as_bytes()).expect("parses");
            let master = key_file.open(RESTIC_PASSWORD).expect("opens");
            if i == 0 {
                assert_eq!(master.to_json(), RESTIC_MASTER_KEY_1);
            }

            let plain = master.decrypt(&b64(config)).expect("decrypts config");
            assert_eq!(std::str::from_utf8(&plain).expect("utf-8"), *config_plain);
            let json: serde_json::Value = serde_json::from_slice(&plain).expect("json");
            assert_eq!(json["version"], i + 1);

            assert!(matches!(
                key_file.open(b"cairn-golden!"),
                Err(Error::WrongPassword)
            ));
        }
    }

    #[test]
    fn create_then_open() {
        let master = MasterKey::generate();
        let key_file = KeyFile::create(&master, b"pw", KdfParams::insecure_fast(), "alice", "box")
            .expect("creates");
        assert_eq!(key_file.kdf, "scrypt");
        assert_eq!((key_file.n, key_file.r, key_file.p), (1024, 8, 1));
        assert_eq!(key_file.salt.len(), SALT_LEN);
        assert_eq!(
            (key_file.username.as_str(), key_file.hostname.as_str()),
            ("alice", "box")
        );
        DateTime::parse_from_rfc3339(&key_file.created).expect("RFC 3339");

        let json = key_file.to_json();
        let reread = KeyFile::from_json(&json).expect("parses");
        assert_eq!(reread, key_file);
        assert_eq!(reread.open(b"pw").expect("opens"), master);
        assert!(matches!(reread.open(b"PW"), Err(Error::WrongPassword)));
        assert!(matches!(reread.open(b""), Err(Error::WrongPassword)));
    }

    #[test]
    fn same_master_under_two_passwords() {
        let master = MasterKey::generate();
        let a =
            KeyFile::create(&master, b"a", KdfParams::insecure_fast(), "", "").expect("creates");
        let b =
            KeyFile::create(&master, b"b", KdfParams::insecure_fast(), "", "").expect("creates");
        assert_ne!(a.salt, b.salt);
        assert_ne!(a.data, b.data);
        assert_eq!(a.open(b"a").expect("opens"), b.open(b"b").expect("opens"));
        assert!(matches!(a.open(b"b"), Err(Error::WrongPassword)));
    }

    #[test]
    fn create_rejects_bad_params() {
        let master = MasterKey::generate();
        let mut short_salt = KdfParams::insecure_fast();
        short_salt.salt.truncate(16);
        assert!(matches!(
            KeyFile::create(&master, b"pw", short_salt, "", ""),
            Err(Error::InvalidArgument(_))
        ));
        let mut bad_n = KdfParams::insecure_fast();
        bad_n.n = 1000;
        assert!(matches!(
            KeyFile::create(&master, b"pw", bad_n, "", ""),
            Err(Error::Unsupported { .. })
        ));
    }

    fn cheap_key_file() -> (MasterKey, KeyFile) {
        let master = MasterKey::generate();
        let key_file =
            KeyFile::create(&master, b"pw", KdfParams::insecure_fast(), "u", "h").expect("creates");
        (master, key_file)
    }

    #[test]
    fn open_rejects_other_kdfs_and_hostile_params() {
        let (_, key_file) = cheap_key_file();
        let mut argon = key_file.clone();
        argon.kdf = "argon2id".into();
        match argon.open(b"pw") {
            Err(Error::Unsupported { what, value }) => {
                assert_eq!(what, "key derivation function");
                assert_eq!(value, "argon2id");
            }
            other => panic!("expected Unsupported, got {other:?}"),
        }
        let mut huge = key_file.clone();
        huge.n = 1 << 30;
        assert!(matches!(huge.open(b"pw"), Err(Error::Unsupported { .. })));
        let mut odd = key_file;
        odd.n = 1025;
        assert!(matches!(odd.open(b"pw"), Err(Error::Unsupported { .. })));
    }

    #[test]
    fn open_treats_damaged_data_as_wrong_password() {
        let (_, key_file) = cheap_key_file();
        for data in [
            Vec::new(),
            key_file.data[..31].to_vec(),
            key_file.data[..key_file.data.len() - 1].to_vec(),
        ] {
            let damaged = KeyFile {
                data,
                ..key_file.clone()
            };
            assert!(matches!(damaged.open(b"pw"), Err(Error::WrongPassword)));
        }
        let mut flipped = key_file.clone();
        flipped.data[20] ^= 1;
        assert!(matches!(flipped.open(b"pw"), Err(Error::WrongPassword)));
        let mut other_salt = key_file;
        other_salt.salt[0] ^= 1;
        assert!(matches!(other_salt.open(b"pw"), Err(Error::WrongPassword)));
    }

    #[test]
    fn open_rejects_a_malformed_master_key_behind_a_valid_mac() {
        let (_, mut key_file) = cheap_key_file();
        let user_key = derive_user_key(b"pw", &key_file.kdf_params()).expect("derives");
        key_file.data = user_key.encrypt(br#"{"mac":{"k":"AA==","r":"AA=="},"encrypt":"AA=="}"#);
        assert!(matches!(key_file.open(b"pw"), Err(Error::Corrupt { .. })));
    }

    #[test]
    fn go_time_format() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).expect("time");
        assert_eq!(
            go_rfc3339_nano(&t("2026-11-23T14:41:33.135976800Z")),
            "2026-11-23T14:41:33.1359768Z"
        );
        assert_eq!(
            go_rfc3339_nano(&t("2026-11-23T14:41:35.685356813+00:00")),
            "2026-11-23T14:41:35.685356813Z"
        );
        assert_eq!(
            go_rfc3339_nano(&t("2024-02-29T23:59:59+01:00")),
            "2024-02-29T23:59:59+01:00"
        );
        assert_eq!(
            go_rfc3339_nano(&t("2024-01-02T03:04:05.5-09:30")),
            "2024-01-02T03:04:05.5-09:30"
        );
    }

    /// Checks the other direction with the real restic binary: restic opens
    /// a key file we made and decrypts a config we encrypted. Needs `restic`
    /// on PATH; run with `cargo test -- --ignored`.
    #[test]
    #[ignore = "needs the restic binary"]
    fn restic_opens_our_key_file_and_ciphertext() {
        use std::process::Command;

        let dir = tempfile::tempdir().expect("tempdir");
        let repo = dir.path().join("repo");
        let restic = |password: &str, args: &[&str]| {
            let out = Command::new("restic")
                .arg("--repo")
                .arg(&repo)
                .args(args)
                .env("RESTIC_PASSWORD", password)
                .output()
                .expect("runs restic");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            out.stdout
        };
        restic("theirs", &["init", "--repository-version", "2"]);

        let keys = repo.join("keys");
        let entry = std::fs::read_dir(&keys)
            .expect("keys/")
            .next()
            .expect("one key");
        let theirs = std::fs::read(entry.expect("entry").path()).expect("key file");
        let master = KeyFile::from_json(&theirs)
            .expect("parses")
            .open(b"theirs")
            .expect("opens");

        let ours = KeyFile::create(
            &master,
            b"ours",
            KdfParams::insecure_fast(),
            "cairn",
            "test",
        )
        .expect("creates")
        .to_json();
        std::fs::write(keys.join(Id::hash(&ours).to_hex()), &ours).expect("write key");

        let config_path = repo.join("config");
        let config = master
            .decrypt(&std::fs::read(&config_path).expect("config"))
            .expect("decrypts");
        std::fs::remove_file(&config_path).expect("remove config");
        std::fs::write(&config_path, master.encrypt(&config)).expect("write config");

        let shown: serde_json::Value =
            serde_json::from_slice(&restic("ours", &["cat", "config", "--no-lock"])).expect("json");
        let expected: serde_json::Value = serde_json::from_slice(&config).expect("json");
        assert_eq!(shown, expected);
        let listed = restic("ours", &["key", "list", "--json", "--no-lock"]);
        assert!(String::from_utf8_lossy(&listed).contains("\"userName\":\"cairn\""));
    }
}
