//! Golden cases ported (as data) from restic's `internal/filter` tests, plus
//! cases for negation, groups, case folding and pattern files.

use super::*;

fn set(patterns: &[&str]) -> PatternSet {
    iset(patterns, false)
}

fn iset(patterns: &[&str], case_insensitive: bool) -> PatternSet {
    let patterns: Vec<String> = patterns.iter().map(|p| p.to_string()).collect();
    PatternSet::new(&patterns, case_insensitive)
        .unwrap_or_else(|e| panic!("{patterns:?} should parse: {e}"))
}

/// restic's `matchTests` (`filter.Match`), without its three rows for the
/// empty pattern, which a set ignores (see `empty_patterns_are_ignored`).
const MATCH_CASES: &[(&str, &str, bool)] = &[
    ("*.go", "/foo/bar/test.go", true),
    ("*.c", "/foo/bar/test.go", false),
    ("*", "/foo/bar/test.go", true),
    ("**", "/foo/bar/test.go", true),
    ("foo*", "/foo/bar/test.go", true),
    ("bar*", "/foo/bar/test.go", true),
    ("/bar*", "/foo/bar/test.go", false),
    ("bar/*", "/foo/bar/test.go", true),
    ("baz/*", "/foo/bar/test.go", false),
    ("bar/test.go", "/foo/bar/test.go", true),
    ("bar/*.go", "/foo/bar/test.go", true),
    ("ba*/*.go", "/foo/bar/test.go", true),
    ("bb*/*.go", "/foo/bar/test.go", false),
    ("test.*", "/foo/bar/test.go", true),
    ("tesT.*", "/foo/bar/test.go", false),
    ("bar/*", "/foo/bar/baz", true),
    ("bar", "/foo/bar", true),
    ("/foo/bar", "/foo/bar", true),
    ("/foo/bar/", "/foo/bar", true),
    ("/foo/bar", "/foo/baz", false),
    ("/foo/bar", "/foo/baz/", false),
    ("/foo///bar", "/foo/bar", true),
    ("/foo/../bar", "/foo/bar", false),
    ("/foo/../bar", "/bar", true),
    ("/foo", "/foo/baz", true),
    ("/foo/", "/foo/baz", true),
    ("/foo/*", "/foo", false),
    ("/foo/*", "/foo/baz", true),
    ("bar", "/foo/bar/baz", true),
    ("bar", "/foo/bar/test.go", true),
    ("/foo/*test.*", "/foo/bar/test.go", false),
    ("/foo/*/test.*", "/foo/bar/test.go", true),
    ("/foo/*/bar/test.*", "/foo/bar/test.go", false),
    ("/*/*/bar/test.*", "/foo/bar/test.go", false),
    ("/*/*/bar/test.*", "/foo/bar/baz/test.go", false),
    ("/*/*/baz/test.*", "/foo/bar/baz/test.go", true),
    ("/*/foo/bar/test.*", "/foo/bar/baz/test.go", false),
    ("/foo/bar/test.*", "bar/baz/test.go", false),
    ("/x/y/bar/baz/test.*", "bar/baz/test.go", false),
    ("/x/y/bar/baz/test.c", "bar/baz/test.go", false),
    ("baz/test.*", "bar/baz/test.go", true),
    ("baz/tesT.*", "bar/baz/test.go", false),
    ("test.go", "bar/baz/test.go", true),
    ("*.go", "bar/baz/test.go", true),
    ("*.c", "bar/baz/test.go", false),
    ("sdk", "/foo/bar/sdk", true),
    ("sdk", "/foo/bar/sdk/test/sdk_foo.go", true),
    (
        "sdk/*/cpp/*/*vars*.html",
        "/usr/share/doc/libreoffice/sdk/docs/cpp/ref/a00517.html",
        false,
    ),
    (
        "foo/**/bar/*.go",
        "/home/user/foo/work/special/project/bar/test.go",
        true,
    ),
    ("foo/**/bar/*.go", "/home/user/foo/bar/test.go", true),
    ("foo/**/bar/*.go", "x/foo/bar/test.go", true),
    ("foo/**/bar/*.go", "foo/bar/test.go", true),
    ("foo/**/bar/*.go", "foo/bar/baz/bar/test.go", true),
    ("foo/**/bar/*.go", "/home/user/foo/test.c", false),
    ("foo/**/bar/*.go", "bar/foo/main.go", false),
    ("foo/**/bar/*.go", "/foo/bar/main.go", true),
    ("foo/**/bar/*.go", "bar/main.go", false),
    ("foo/**/bar", "/home/user/foo/x/y/bar", true),
    ("foo/**/bar", "/home/user/foo/x/y/bar/main.go", true),
    ("foo/**/bar/**/x", "/home/user/foo/bar/x", true),
    (
        "foo/**/bar/**/x",
        "/home/user/foo/blaaa/blaz/bar/shared/work/x",
        true,
    ),
    ("user/**/important*", "/home/user/work/x/y/hidden/x", false),
    (
        "user/**/hidden*/**/c",
        "/home/user/work/x/y/hidden/z/a/b/c",
        true,
    ),
    ("c:/foo/*test.*", "c:/foo/bar/test.go", false),
    ("c:/foo", "c:/foo/bar", true),
    ("c:/foo/", "c:/foo/bar", true),
    ("c:/foo/*/test.*", "c:/foo/bar/test.go", true),
    ("c:/foo/*/bar/test.*", "c:/foo/bar/test.go", false),
    // Go's filepath.Match example from restic's docs.
    ("/home/[uU]ser/?.go", "/home/user/F.go", true),
];

/// restic's `childMatchTests` (`filter.ChildMatch`), without the empty
/// pattern rows.
const CHILD_MATCH_CASES: &[(&str, &str, bool)] = &[
    ("foo/bar", "/foo", true),
    ("baz/bar", "/foo", true),
    ("foo", "/foo/bar", true),
    ("bar", "/foo", true),
    ("baz", "/foo/bar", true),
    ("*", "/foo", true),
    ("*", "/foo/bar", true),
    ("/foo/bar", "/foo", true),
    ("/foo/bar/baz", "/foo", true),
    ("/foo/bar/baz", "/foo/bar", true),
    ("/foo/bar/baz", "/foo/baz", false),
    ("/foo/**/baz", "/foo/bar/baz", true),
    ("/foo/**/baz", "/foo/bar/baz/blah", true),
    ("/foo/**/qux", "/foo/bar/baz/qux", true),
    ("/foo/**/qux", "/foo/bar/baz", true),
    ("/foo/**/qux", "/foo/bar/baz/boo", true),
    ("/foo/**", "/foo/bar/baz", true),
    ("/foo/**", "/foo/bar", true),
    ("foo/**/bar/**/x", "/home/user/foo", true),
    ("foo/**/bar/**/x", "/home/user/foo/bar", true),
    (
        "foo/**/bar/**/x",
        "/home/user/foo/blaaa/blaz/bar/shared/work/x",
        true,
    ),
    ("/foo/*/qux", "/foo/bar", true),
    ("/foo/*/qux", "/foo/bar/boo", false),
    ("/foo/*/qux", "/foo/bar/boo/xx", false),
    ("/baz/bar", "/foo", false),
    ("/foo", "/foo/bar", true),
    ("/*", "/foo", true),
    ("/*", "/foo/bar", true),
    ("/**", "/foo", true),
    ("/*/**", "/foo", true),
    ("/*/**", "/foo/bar", true),
    ("/*/bar", "/foo", true),
    ("/bar/*", "/foo", false),
    ("/foo/*/baz", "/foo/bar", true),
    ("/foo/*/baz", "/foo/baz", true),
    ("/foo/*/baz", "/bar/baz", false),
    ("/**/*", "/foo", true),
    ("/**/bar", "/foo/bar", true),
];

/// restic's `filterListTests`: (patterns, path, matches, child may match).
const LIST_CASES: &[(&[&str], &str, bool, bool)] = &[
    (&[], "/foo/bar/test.go", false, false),
    (&["*.go"], "/foo/bar/test.go", true, true),
    (&["*.go"], "/foo/bar", false, true),
    (&["*.c"], "/foo/bar/test.go", false, true),
    (&["*.go", "*.c"], "/foo/bar/test.go", true, true),
    (&["*"], "/foo/bar/test.go", true, true),
    (&["x"], "/foo/bar/test.go", false, true),
    (&["?"], "/foo/bar/test.go", false, true),
    (&["?", "x"], "/foo/bar/x", true, true),
    (&["/*/*/bar/test.*"], "/foo/bar/test.go", false, false),
    (&["/*/*/bar/test.*"], "/foo/bar/bar", false, true),
    (&["/*/*/bar/test.*", "*.go"], "/foo/bar/test.go", true, true),
    (&["", "*.c"], "/foo/bar/test.go", false, true),
    (&["!**", "*.go"], "/foo/bar/test.go", true, true),
    (&["!**", "*.c"], "/foo/bar/test.go", false, true),
    (&["/foo/*/test.*", "!*.c"], "/foo/bar/test.c", false, false),
    (&["/foo/*/test.*", "!*.c"], "/foo/bar/test.go", true, true),
    (
        &["/foo/*/*", "!test.*", "*.c"],
        "/foo/bar/test.go",
        false,
        true,
    ),
    (
        &["/foo/*/*", "!test.*", "*.c"],
        "/foo/bar/test.c",
        true,
        true,
    ),
    (
        &["/foo/*/*", "!test.*", "*.c"],
        "/foo/bar/file.go",
        true,
        true,
    ),
    (
        &["/**/*", "!/foo", "/foo/*", "!/foo/bar"],
        "/foo/other/test.go",
        true,
        true,
    ),
    (
        &["/**/*", "!/foo", "/foo/*", "!/foo/bar"],
        "/foo/bar",
        false,
        false,
    ),
    (
        &["/**/*", "!/foo", "/foo/*", "!/foo/bar"],
        "/foo/bar/test.go",
        false,
        false,
    ),
    (
        &["/**/*", "!/foo", "/foo/*", "!/foo/bar"],
        "/foo/bar/test.go/child",
        false,
        false,
    ),
    (
        &["/**/*", "!/foo", "/foo/*", "!/foo/bar", "/foo/bar/test*"],
        "/foo/bar/test.go/child",
        true,
        true,
    ),
    (&["/foo/bar/*"], "/foo", false, true),
    (&["/foo/bar/*", "!/foo/bar/[a-m]*"], "/foo", false, true),
    (&["/foo/**/test.c"], "/foo/bar/foo/bar/test.c", true, true),
    (&["/foo/*/test.c"], "/foo/bar/foo/bar/test.c", false, false),
];

#[test]
fn restic_match_cases() {
    for &(pattern, path, want) in MATCH_CASES {
        assert_eq!(
            set(&[pattern]).matches(path),
            want,
            "{pattern:?} vs {path:?}"
        );
    }
}

#[test]
fn restic_child_match_cases() {
    for &(pattern, path, want) in CHILD_MATCH_CASES {
        let got = set(&[pattern]).child_may_match(path);
        assert_eq!(got, want, "child of {pattern:?} vs {path:?}");
    }
}

#[test]
fn restic_list_cases() {
    for &(patterns, path, want_match, want_child) in LIST_CASES {
        let set = set(patterns);
        assert_eq!(set.matches(path), want_match, "{patterns:?} vs {path:?}");
        assert_eq!(
            set.matches_with_child(path),
            (want_match, want_child),
            "{patterns:?} vs {path:?} (with child)"
        );
        assert_eq!(set.child_may_match(path), want_child);
    }
}

/// restic's `TestRejectByPattern` and `TestRejectByInsensitivePattern`.
#[test]
fn restic_reject_cases() {
    let patterns = ["*.go", "README.md", "/home/user/foobar/*"];
    let sensitive: &[(&str, bool)] = &[
        ("/home/user/foo.go", true),
        ("/home/user/foo.c", false),
        ("/home/user/foobar", false),
        ("/home/user/foobar/x", true),
        ("/home/user/README", false),
        ("/home/user/README.md", true),
    ];
    let insensitive: &[(&str, bool)] = &[
        ("/home/user/foo.GO", true),
        ("/home/user/foo.c", false),
        ("/home/user/foobar", false),
        ("/home/user/FOObar/x", true),
        ("/home/user/README", false),
        ("/home/user/readme.md", true),
    ];
    for (case_insensitive, cases) in [(false, sensitive), (true, insensitive)] {
        let set = iset(&patterns, case_insensitive);
        for &(path, want) in cases {
            assert_eq!(set.matches(path), want, "{path:?} (ci={case_insensitive})");
        }
    }
}

/// restic's `TestIncludeByPattern` and `TestIncludeByInsensitivePattern`.
#[test]
fn restic_include_cases() {
    let patterns = ["*.go", "README.md"];
    let sensitive: &[(&str, bool)] = &[
        ("/home/user/foo.go", true),
        ("/home/user/foo.c", false),
        ("/home/user/foobar", false),
        ("/home/user/foobar/x", false),
        ("/home/user/README", false),
        ("/home/user/README.md", true),
    ];
    let insensitive: &[(&str, bool)] = &[
        ("/home/user/foo.GO", true),
        ("/home/user/foo.c", false),
        ("/home/user/foobar", false),
        ("/home/user/FOObar/x", false),
        ("/home/user/README", false),
        ("/home/user/readme.MD", true),
    ];
    for (case_insensitive, cases) in [(false, sensitive), (true, insensitive)] {
        let set = iset(&patterns, case_insensitive);
        for &(path, want) in cases {
            assert_eq!(set.matches(path), want, "{path:?} (ci={case_insensitive})");
        }
    }
}

/// restic's `TestValidPatterns` and `TestInvalidPattern`: every pattern of
/// the tables parses; malformed ones are all named in the error.
#[test]
fn invalid_patterns_are_rejected_by_name() {
    for &(pattern, _, _) in MATCH_CASES.iter().chain(CHILD_MATCH_CASES) {
        set(&[pattern]);
    }
    let patterns: Vec<String> = ["*.foo", "*[._]log[.-][0-9]", "!*[._]log[.-][0-9]"]
        .iter()
        .map(|p| p.to_string())
        .collect();
    let err = PatternSet::new(&patterns, false).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("\"*[._]log[.-][0-9]\""), "{msg}");
    assert!(msg.contains("\"!*[._]log[.-][0-9]\""), "{msg}");
    assert!(!msg.contains("*.foo"), "{msg}");
    for bad in ["test/[", "test/**/[", "a\\", "[]", "x/[^]/y"] {
        let err = PatternSet::new(&[bad.to_string()], true).unwrap_err();
        assert!(err
            .to_string()
            .contains(bad.escape_debug().to_string().as_str()));
    }
}

#[test]
fn empty_patterns_and_paths() {
    let empty = set(&["", ""]);
    assert!(empty.is_empty());
    assert!(!empty.matches("/foo"));
    assert!(!empty.child_may_match("/foo"));
    assert!(PatternSet::default().is_empty());
    assert!(!set(&["*"]).is_empty());
    // restic rejects the empty path; it matches nothing here.
    assert_eq!(set(&["**"]).matches_with_child(""), (false, false));
}

#[test]
fn double_star_needs_a_component() {
    assert!(!set(&["**"]).matches("/"));
    assert!(set(&["**"]).matches("foo"));
    // "/" cleans to the root and, as in restic, means "/**".
    assert!(set(&["/"]).matches("/"));
    assert!(set(&["/"]).matches("/etc/passwd"));
    assert!(!set(&["/"]).matches("etc/passwd"));
    assert!(set(&["/**"]).matches("/etc"));
    assert!(set(&["a/**/**/b"]).matches("/a/b"));
    assert!(set(&["a/**/**/b"]).matches("/x/a/1/2/3/b/y"));
    assert!(!set(&["a/**/**/b"]).matches("/x/b/a"));
}

/// With several `**`, restic only lets the path grow the pattern while it
/// fits with each unexpanded `**` counted as one component.
#[test]
fn several_double_stars_keep_restics_length_rule() {
    // Checked against `restic backup --dry-run -vv` (0.14): the directory
    // itself is kept, its contents are excluded.
    let set = set(&["/tmp/rt/**/node_modules/**"]);
    assert!(!set.matches("/tmp/rt/a/node_modules"));
    assert!(set.matches("/tmp/rt/a/node_modules/x"));
    assert!(set.matches("/tmp/rt/node_modules/x"));
    assert!(!self::set(&["/**/**/**"]).matches("/c"));
    assert!(self::set(&["/**/**/**"]).matches("/c/d"));
    assert!(self::set(&["/**"]).matches("/c"));
    assert!(!self::set(&["*/**/**"]).matches("ba"));
    assert!(self::set(&["*/**/**"]).matches("/ba"));
    assert!(!self::set(&["foo/**/bar/**/x"]).matches("foo/bar/x"));
    assert!(self::set(&["foo/**/bar/**/x"]).matches("/foo/bar/x"));
}

#[test]
fn relative_patterns_never_match_the_root_marker() {
    assert!(!set(&["*"]).matches("/"));
    assert!(!set(&["?"]).matches("/"));
    assert!(set(&["*"]).matches("x"));
}

#[test]
fn negation_reincludes_and_later_patterns_win() {
    // The home-directory example of restic's docs.
    let set = set(&["/home/u/*", "!/home/u/Documents", "!/home/u/code", "*.o"]);
    assert!(set.matches("/home/u/Downloads"));
    assert!(set.matches("/home/u/Downloads/big.iso"));
    assert!(!set.matches("/home/u/Documents"));
    assert!(!set.matches("/home/u/Documents/cv.odt"));
    assert!(set.matches("/home/u/code/main.o"));
    assert!(!set.matches("/home/u"));
    // A later positive pattern re-excludes below a re-included directory.
    let set2 = self::set(&["/data/*", "!/data/keep", "/data/keep/tmp"]);
    assert!(!set2.matches("/data/keep/x"));
    assert!(set2.matches("/data/keep/tmp/x"));
    // A negation before any positive pattern has nothing to cancel.
    assert!(self::set(&["!*.c", "*.c"]).matches("/a.c"));
    // A literal leading '!' is written escaped.
    assert!(self::set(&["\\!important"]).matches("/x/!important"));
    assert!(!self::set(&["\\!important"]).matches("/x/important"));
}

#[test]
fn negation_prunes_children() {
    // Include /src but not /src/vendor: do not descend into the latter.
    let set = set(&["/src", "!/src/vendor"]);
    assert_eq!(set.matches_with_child("/src"), (true, true));
    assert_eq!(set.matches_with_child("/src/vendor"), (false, false));
    assert_eq!(set.matches_with_child("/src/vendor/x.go"), (false, false));
    assert_eq!(set.matches_with_child("/doc"), (false, false));
    assert_eq!(set.matches_with_child("/"), (false, true));
}

#[test]
fn extended_sets_or_their_groups() {
    let mut exclude = set(&["*.tmp", "!keep.tmp"]);
    let iexclude = iset(&["CACHE", "!cache/README"], true);
    exclude.extend(iexclude);
    assert!(exclude.matches("/a/b.tmp"));
    assert!(!exclude.matches("/a/keep.tmp"));
    assert!(exclude.matches("/a/Cache"));
    assert!(exclude.matches("/a/cache/x"));
    // A negation of one group does not cancel another group's match.
    assert!(exclude.matches("/a/cache/keep.tmp"));
    assert!(!exclude.matches("/a/Cache/ReadMe"));
    // Case-sensitive group stays case-sensitive.
    assert!(!exclude.matches("/a/b.TMP"));
    // Extending with an empty set changes nothing.
    let before = format!("{exclude:?}");
    exclude.extend(PatternSet::default());
    assert_eq!(format!("{exclude:?}"), before);
}

#[test]
fn case_insensitive_lowercases_patterns_and_paths() {
    let set = iset(&["/Home/*/DOCS/[A-C]*.TXT"], true);
    assert!(set.matches("/home/Bob/docs/Budget.txt"));
    assert!(set.matches("/HOME/bob/Docs/a.TXT"));
    assert!(!set.matches("/home/bob/docs/d.txt"));
    assert!(iset(&["ÄPFEL"], true).matches("/x/äpfel"));
}

#[test]
fn cleaning_follows_go_path_clean() {
    let cases = [
        ("", "."),
        (".", "."),
        ("./", "."),
        ("/", "/"),
        ("//", "/"),
        ("a/", "a"),
        ("a//b/./c/", "a/b/c"),
        ("/../a", "/a"),
        ("../a", "../a"),
        ("a/../..", ".."),
        ("a/b/../../../c", "../c"),
        ("/a/b/../c/..", "/a"),
        ("../../x/..", "../.."),
    ];
    for (input, want) in cases {
        assert_eq!(clean(input), want, "clean({input:?})");
    }
}

#[test]
fn deep_paths_and_many_double_stars_are_cheap() {
    let deep: String = (0..20_000).map(|i| format!("/d{i}")).collect();
    let set = set(&["a/**/b/**/c/**/d/**/e/**/f", "/**/**/**/**/zzz"]);
    assert!(!set.matches(&deep));
    assert!(set.child_may_match(&deep));
    let hit = format!("{deep}/a/1/b/c/2/3/d/e/f/g");
    assert!(set.matches(&hit));
}

#[test]
fn pattern_lines_trim_skip_comments_and_expand() {
    let text = "# comment\n\n  *.go  \r\n\t# indented comment\nfoo/**/bar\r\n$HOME/x\n\
                ${HOME}y\n$$literal\n$UNSET\nlast";
    let getenv = |name: &str| {
        if name == "HOME" {
            "/home/bob".into()
        } else {
            String::new()
        }
    };
    assert_eq!(
        parse_pattern_lines(text, getenv),
        [
            "*.go",
            "foo/**/bar",
            "/home/bob/x",
            "/home/boby",
            "$literal",
            "last"
        ]
    );
}

#[test]
fn env_expansion_follows_go_os_expand() {
    let getenv = |name: &str| format!("<{name}>");
    let cases = [
        ("plain", "plain"),
        ("$A/b", "<A>/b"),
        ("${A}b", "<A>b"),
        ("$A_1-x", "<A_1>-x"),
        ("$1x", "<1>x"),
        ("${@}", "<@>"),
        ("$$", "$"),
        ("${$}", "$"),
        ("a$", "a$"),
        ("$/x", "$/x"),
        ("$ä", "$ä"),
        ("${}x", "x"),
        ("${x", "x"),
        ("a${long name}", "a<long name>"),
        ("€$B€", "€<B>€"),
    ];
    for (input, want) in cases {
        assert_eq!(expand_env(input, getenv), want, "expand({input:?})");
    }
}

#[test]
fn pattern_files_are_decoded_like_restic() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };

    let plain = write("plain", b"# excludes\n*.o\n\n  /tmp/  \n");
    assert_eq!(read_pattern_file(&plain).unwrap(), ["*.o", "/tmp/"]);

    let bom = write("bom", b"\xEF\xBB\xBF*.o\r\n*.a\r\n");
    assert_eq!(read_pattern_file(&bom).unwrap(), ["*.o", "*.a"]);

    let text = "*.ø\n# c\nb\n";
    let mut le = vec![0xFF, 0xFE];
    le.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    assert_eq!(read_pattern_file(&write("le", &le)).unwrap(), ["*.ø", "b"]);
    let mut be = vec![0xFE, 0xFF];
    be.extend(text.encode_utf16().flat_map(u16::to_be_bytes));
    assert_eq!(read_pattern_file(&write("be", &be)).unwrap(), ["*.ø", "b"]);

    let bad = write("bad", b"ok\n\xFF\xFFx\n");
    let err = read_pattern_file(&bad).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    assert!(err.to_string().contains("line 2"), "{err}");

    let missing = dir.path().join("missing");
    assert!(matches!(read_pattern_file(&missing), Err(Error::Io { .. })));
}
