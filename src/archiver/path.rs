//! Lexical path handling as Go's `path/filepath` does it on Unix, on raw
//! bytes (file names need not be UTF-8).
//!
//! restic cleans every backup target with `filepath.Clean` and makes it
//! absolute with `filepath.Abs`; both are purely lexical (no symlink is
//! resolved), and the snapshot's `paths` and the shape of its tree depend on
//! exactly that, so cairn reproduces them here rather than using
//! [`std::path::Path::canonicalize`] or [`std::path::Path::components`]
//! (which keep `..`).

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// Go's `filepath.Clean`: collapse repeated `/`, drop `.` components,
/// resolve `..` against the component before it (and drop it at the root);
/// the empty path is `.`.
pub fn clean(path: &[u8]) -> Vec<u8> {
    let rooted = path.first() == Some(&b'/');
    let mut parts: Vec<&[u8]> = Vec::new();
    for comp in path.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => match parts.last() {
                Some(last) if *last != b".." => {
                    parts.pop();
                }
                _ if rooted => {}
                _ => parts.push(comp),
            },
            _ => parts.push(comp),
        }
    }
    let mut out = Vec::with_capacity(path.len());
    if rooted {
        out.push(b'/');
    }
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        out.extend_from_slice(part);
    }
    if out.is_empty() {
        out.push(b'.');
    }
    out
}

/// `filepath.Clean` on a [`Path`].
pub fn clean_path(path: &Path) -> PathBuf {
    PathBuf::from(OsString::from_vec(clean(path.as_os_str().as_bytes())))
}

/// Go's `filepath.Abs` with an explicit working directory: `path` cleaned,
/// and joined to `cwd` first if it is relative.
pub fn absolute(path: &Path, cwd: &Path) -> PathBuf {
    let bytes = path.as_os_str().as_bytes();
    if bytes.first() == Some(&b'/') {
        return clean_path(path);
    }
    let mut joined = cwd.as_os_str().as_bytes().to_vec();
    joined.push(b'/');
    joined.extend_from_slice(bytes);
    PathBuf::from(OsString::from_vec(clean(&joined)))
}

/// Go's `filepath.Join(a, b)` for a single name: concatenate and clean.
pub fn join(dir: &Path, name: &OsStr) -> PathBuf {
    let mut joined = dir.as_os_str().as_bytes().to_vec();
    joined.push(b'/');
    joined.extend_from_slice(name.as_bytes());
    PathBuf::from(OsString::from_vec(clean(&joined)))
}

/// The components of `path` as restic's archiver sees a target
/// (`pathComponents(p, false)`): the path is rooted first, so `a/../b` is
/// `[b]`, `../x` is `[x]`, and `.`, `..` and `/` have none.
pub fn components(path: &[u8]) -> Vec<Vec<u8>> {
    let mut rooted = Vec::with_capacity(path.len() + 1);
    rooted.push(b'/');
    rooted.extend_from_slice(path);
    clean(&rooted)
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

/// The directory that holds the first component of a target (restic's
/// `rootDirectory`): `/` for absolute paths, else `.` followed by one `..`
/// per leading `..` of the cleaned path.
pub fn root_directory(path: &[u8]) -> Vec<u8> {
    if path.first() == Some(&b'/') {
        return b"/".to_vec();
    }
    let cleaned = clean(path);
    let ups = cleaned
        .split(|&b| b == b'/')
        .take_while(|c| *c == b"..")
        .count();
    if ups == 0 {
        return b".".to_vec();
    }
    let mut out = b"..".to_vec();
    for _ in 1..ups {
        out.extend_from_slice(b"/..");
    }
    out
}

/// A path as text for messages, snapshot paths and pattern matching.
/// Invalid UTF-8 becomes U+FFFD, as Go's JSON encoder writes it.
pub fn lossy(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> String {
        String::from_utf8(clean(s.as_bytes())).unwrap()
    }

    #[test]
    fn clean_matches_go() {
        // Cases from Go's path/filepath tests.
        for (input, want) in [
            ("", "."),
            ("abc", "abc"),
            ("abc/def", "abc/def"),
            (".", "."),
            ("..", ".."),
            ("../..", "../.."),
            ("../../abc", "../../abc"),
            ("/abc", "/abc"),
            ("/", "/"),
            ("abc/", "abc"),
            ("/abc/def/", "/abc/def"),
            ("abc//def//ghi", "abc/def/ghi"),
            ("//abc", "/abc"),
            ("abc/./def", "abc/def"),
            ("/./abc/def", "/abc/def"),
            ("abc/def/ghi/../jkl", "abc/def/jkl"),
            ("abc/def/../ghi/../jkl", "abc/jkl"),
            ("abc/def/..", "abc"),
            ("abc/def/../..", "."),
            ("/abc/def/../..", "/"),
            ("abc/def/../../..", ".."),
            ("/abc/def/../../..", "/"),
            ("abc/def/../../../ghi/jkl/../../../mno", "../../mno"),
            ("/../abc", "/abc"),
            ("abc/./../def", "def"),
            ("abc//./../def", "def"),
            ("abc/../../././../def", "../../def"),
        ] {
            assert_eq!(c(input), want, "clean({input:?})");
        }
    }

    #[test]
    fn absolute_and_join() {
        let cwd = Path::new("/home/u");
        assert_eq!(absolute(Path::new("x/../y"), cwd), Path::new("/home/u/y"));
        assert_eq!(absolute(Path::new("../.."), cwd), Path::new("/"));
        assert_eq!(absolute(Path::new("/a//b/"), cwd), Path::new("/a/b"));
        assert_eq!(absolute(Path::new("."), cwd), Path::new("/home/u"));
        assert_eq!(join(Path::new("/"), OsStr::new("etc")), Path::new("/etc"));
        assert_eq!(join(Path::new("."), OsStr::new("a")), Path::new("a"));
    }

    #[test]
    fn components_and_roots_like_restic() {
        let comps = |s: &str| -> Vec<String> {
            components(s.as_bytes())
                .into_iter()
                .map(|c| String::from_utf8(c).unwrap())
                .collect()
        };
        assert_eq!(comps("/tmp/x/y"), ["tmp", "x", "y"]);
        assert_eq!(comps("src/d1"), ["src", "d1"]);
        assert_eq!(comps("../../a/b"), ["a", "b"]);
        assert!(comps(".").is_empty() && comps("..").is_empty() && comps("/").is_empty());
        let root = |s: &str| String::from_utf8(root_directory(s.as_bytes())).unwrap();
        assert_eq!(root("/tmp/x"), "/");
        assert_eq!(root("src/d1"), ".");
        assert_eq!(root("../x"), "..");
        assert_eq!(root("../../a/b"), "../..");
        assert_eq!(root("a/../../b"), "..");
    }

    #[test]
    fn non_utf8_names_survive() {
        let raw = b"/tmp/bad\xffname/../x\xfe".to_vec();
        assert_eq!(clean(&raw), b"/tmp/x\xfe".to_vec());
    }
}
