//! restic's "default" repository layout: where each file lives, relative to
//! the repository root.
//!
//! ```text
//! config
//! keys/<id>
//! snapshots/<id>
//! index/<id>
//! locks/<id>
//! data/<first two hex digits of id>/<id>
//! ```
//!
//! Invariant: every path this module returns is relative, has no `..`
//! component and stays inside the repository. This holds because a name is
//! accepted only if it is exactly 64 lowercase hex digits (the config's name
//! is fixed and not taken from the caller), so a hostile name such as
//! `../../etc/passwd` is rejected with [`Error::InvalidArgument`] before any
//! path is built. Backends validate every name through [`check_name`] (or
//! [`relative_path`], which calls it), including backends without paths,
//! so that all of them accept exactly the same names.
//!
//! restic's old `s3legacy` layout is not supported.

use std::path::PathBuf;

use crate::backend::FileType;
use crate::error::{Error, Result};
use crate::id::ID_LEN;

/// File name of the repository config, at the repository root.
pub const CONFIG_NAME: &str = "config";

/// Length of a valid file name: an id in hex.
pub const NAME_LEN: usize = 2 * ID_LEN;

/// The directory holding all files of a type, relative to the root; `None`
/// for the config, which sits at the root itself. Pack files live one level
/// further down, see [`relative_path`].
pub fn type_dir(tpe: FileType) -> Option<&'static str> {
    match tpe {
        FileType::Config => None,
        FileType::Key => Some("keys"),
        FileType::Snapshot => Some("snapshots"),
        FileType::Index => Some("index"),
        FileType::Pack => Some("data"),
        FileType::Lock => Some("locks"),
    }
}

/// True if `name` is a valid name for a non-config file: exactly 64
/// lowercase hex digits, as restic names every file but the config.
pub fn is_valid_name(name: &str) -> bool {
    name.len() == NAME_LEN && is_lower_hex(name)
}

/// True if `name` is a valid pack subdirectory name (`00` … `ff`).
pub fn is_valid_pack_subdir(name: &str) -> bool {
    name.len() == 2 && is_lower_hex(name)
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Check that `name` is acceptable for a file of type `tpe`.
///
/// The config accepts `"config"` or `""` (its name carries no information;
/// restic ignores it too); every other type requires [`is_valid_name`].
pub fn check_name(tpe: FileType, name: &str) -> Result<()> {
    let ok = match tpe {
        FileType::Config => name.is_empty() || name == CONFIG_NAME,
        _ => is_valid_name(name),
    };
    if ok {
        return Ok(());
    }
    let want = match tpe {
        FileType::Config => "\"config\"",
        _ => "64 lowercase hex digits",
    };
    Err(Error::InvalidArgument(format!(
        "invalid {} file name {:?}: want {want}",
        tpe.name(),
        abbreviate(name)
    )))
}

/// The canonical name of a file: `"config"` for the config, `name` otherwise.
/// Validates the name first.
pub fn canonical_name(tpe: FileType, name: &str) -> Result<&str> {
    check_name(tpe, name)?;
    Ok(match tpe {
        FileType::Config => CONFIG_NAME,
        _ => name,
    })
}

/// The path of a file relative to the repository root, after validating its
/// name with [`check_name`].
pub fn relative_path(tpe: FileType, name: &str) -> Result<PathBuf> {
    check_name(tpe, name)?;
    Ok(match type_dir(tpe) {
        None => PathBuf::from(CONFIG_NAME),
        // The name is ASCII hex, so slicing at 2 is on a char boundary.
        Some(dir) if tpe == FileType::Pack => [dir, &name[..2], name].iter().collect(),
        Some(dir) => [dir, name].iter().collect(),
    })
}

/// Every directory a new repository has, relative to the root, parents
/// before children: the type directories, then the 256 pack directories
/// `data/00` … `data/ff` (restic creates all of them at `init`).
pub fn repository_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = FileType::ALL
        .iter()
        .filter_map(|&t| type_dir(t))
        .map(PathBuf::from)
        .collect();
    dirs.extend((0..=255u8).map(|b| PathBuf::from(format!("data/{b:02x}"))));
    dirs
}

/// A hostile name may be huge; show at most a prefix of it in messages.
fn abbreviate(name: &str) -> String {
    const MAX_CHARS: usize = 80;
    if name.chars().count() <= MAX_CHARS {
        name.to_string()
    } else {
        let mut s: String = name.chars().take(MAX_CHARS).collect();
        s.push('…');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809";

    #[test]
    fn paths_follow_restic_default_layout() {
        let p = |t, n| relative_path(t, n).unwrap();
        assert_eq!(p(FileType::Config, "config"), PathBuf::from("config"));
        assert_eq!(p(FileType::Config, ""), PathBuf::from("config"));
        assert_eq!(p(FileType::Key, ID), PathBuf::from(format!("keys/{ID}")));
        assert_eq!(
            p(FileType::Snapshot, ID),
            PathBuf::from(format!("snapshots/{ID}"))
        );
        assert_eq!(p(FileType::Index, ID), PathBuf::from(format!("index/{ID}")));
        assert_eq!(p(FileType::Lock, ID), PathBuf::from(format!("locks/{ID}")));
        assert_eq!(
            p(FileType::Pack, ID),
            PathBuf::from(format!("data/1a/{ID}"))
        );
    }

    #[test]
    fn hostile_and_malformed_names_are_rejected() {
        let upper = ID.to_ascii_uppercase();
        let traversal = format!("../{}", &ID[3..]);
        let long = "a".repeat(10_000);
        let bad: [&str; 12] = [
            "",
            "abc",
            "../x",
            "..",
            "/etc/passwd",
            &upper,
            &ID[1..],
            &traversal,
            &long,
            "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f80é",
            "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8/9",
            "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809-tmp-1",
        ];
        for tpe in FileType::ALL.into_iter().filter(|&t| t != FileType::Config) {
            for name in bad {
                let err = relative_path(tpe, name).unwrap_err();
                assert!(
                    matches!(err, Error::InvalidArgument(_)),
                    "{tpe:?} {name:?}: {err}"
                );
            }
        }
        for name in ["../config", "x", "CONFIG", ID] {
            assert!(matches!(
                relative_path(FileType::Config, name),
                Err(Error::InvalidArgument(_))
            ));
        }
        // The message of a huge name stays short.
        let msg = check_name(FileType::Pack, &long).unwrap_err().to_string();
        assert!(msg.len() < 200, "{msg}");
    }

    #[test]
    fn name_predicates() {
        assert!(is_valid_name(ID));
        assert!(!is_valid_name(&ID.to_ascii_uppercase()));
        assert!(is_valid_pack_subdir("00"));
        assert!(is_valid_pack_subdir("ff"));
        assert!(!is_valid_pack_subdir("FF"));
        assert!(!is_valid_pack_subdir("0"));
        assert!(!is_valid_pack_subdir("zz"));
        assert_eq!(canonical_name(FileType::Config, "").unwrap(), "config");
        assert_eq!(canonical_name(FileType::Pack, ID).unwrap(), ID);
    }

    #[test]
    fn repository_dirs_match_restic_init() {
        let dirs = repository_dirs();
        assert_eq!(dirs.len(), 5 + 256);
        for d in [
            "keys",
            "snapshots",
            "index",
            "locks",
            "data",
            "data/00",
            "data/ff",
        ] {
            assert!(dirs.contains(&PathBuf::from(d)), "{d}");
        }
        let data = dirs.iter().position(|d| d == &PathBuf::from("data"));
        let first_sub = dirs
            .iter()
            .position(|d| d.parent() == Some(std::path::Path::new("data")));
        assert!(data.is_some() && data < first_sub, "parents come first");
        assert!(dirs.iter().all(|d| d.is_relative()));
    }
}
