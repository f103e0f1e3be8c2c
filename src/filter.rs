//! Include/exclude path patterns with the semantics of restic's
//! `internal/filter` (used by `backup --exclude`, `restore --include/--exclude`).
//!
//! A pattern is a `/`-separated list of components, each a wildcard in the
//! syntax of Go's `filepath.Match` (`*`, `?`, `[a-z]`, `\` escapes), or `**`,
//! which matches any number (zero included) of whole components. A leading `/` anchors the
//! pattern at the root; any other pattern may match at any depth. A pattern
//! is first cleaned like Go's `path.Clean` (`a//b/./c/` is `a/b/c`), so a
//! trailing `/` is ignored.
//!
//! A pattern matches a path when it matches a run of consecutive components
//! of it: `foo` matches `/x/foo` and `/x/foo/y`, so a pattern that matches a
//! directory also matches everything below it. A pattern prefixed with `!`
//! is negated: it cancels earlier matches of the same set (later patterns
//! override earlier ones, as in restic ≥ 0.14). Quirks of restic are kept
//! on purpose so that one exclude file selects the same files in both tools
//! (see `Pattern::matches` for the length rule of several `**`). The user
//! reference is `docs/patterns.md`.
//!
//! Paths are split at `/`; a leading `/` marks an absolute path. Paths are
//! not otherwise cleaned (callers pass canonical paths), except that trailing
//! slashes are ignored; the empty path matches nothing.
//!
//! Invariants: every pattern of a [`PatternSet`] parsed completely, so
//! matching cannot fail; matching a path of `n` components against a pattern
//! of `m` components costs O(n·m) component comparisons, whatever the number
//! of `**`, so paths read from an (untrusted) repository cannot blow it up.

mod glob;
#[cfg(test)]
mod tests;

use std::path::Path;

use crate::{Error, Result};
use glob::Glob;

/// A compiled list of patterns: restic's `--exclude`/`--include` options
/// and their case-insensitive variants.
///
/// Sets combined with [`PatternSet::extend`] stay separate groups: a path
/// matches when it matches any group, and a `!` pattern only cancels matches
/// of its own group (restic builds one filter per option and ORs them).
#[derive(Clone, Debug, Default)]
pub struct PatternSet {
    groups: Vec<Group>,
}

/// Patterns given together, with one case sensitivity.
#[derive(Clone, Debug)]
struct Group {
    /// Patterns were lowercased at parse time; paths are lowercased on match.
    case_insensitive: bool,
    patterns: Vec<Pattern>,
}

#[derive(Clone, Debug)]
struct Pattern {
    negated: bool,
    /// Never empty; [`Part::Root`] can only come first.
    parts: Vec<Part>,
}

#[derive(Clone, Debug)]
enum Part {
    /// The leading `/` of an anchored pattern; matches the root marker of an
    /// absolute path.
    Root,
    /// `**`: any number of components.
    AnyDepth,
    /// A component without wildcards, compared as is.
    Literal(String),
    /// A component with wildcards.
    Glob(Glob),
}

impl Part {
    /// Whether this single-component part matches the component `comp`.
    /// [`Part::AnyDepth`] is handled by the matchers, never here.
    fn matches(&self, comp: &str) -> bool {
        match self {
            Part::Root => comp == ROOT,
            Part::AnyDepth => true,
            Part::Literal(lit) => lit == comp,
            Part::Glob(glob) => glob.matches(comp),
        }
    }
}

/// The component standing for the root of an absolute path (as restic).
const ROOT: &str = "/";

impl PatternSet {
    /// Compile `patterns`; empty strings are ignored. With `case_insensitive`
    /// patterns and paths are compared lowercased (`--iexclude`, `--iinclude`).
    ///
    /// Fails with [`Error::InvalidArgument`] naming every malformed pattern.
    pub fn new(patterns: &[String], case_insensitive: bool) -> Result<PatternSet> {
        let mut compiled = Vec::with_capacity(patterns.len());
        let mut invalid = Vec::new();
        for text in patterns.iter().filter(|p| !p.is_empty()) {
            let parsed = if case_insensitive {
                Pattern::parse(&lowercase(text))
            } else {
                Pattern::parse(text)
            };
            match parsed {
                Ok(pattern) => compiled.push(pattern),
                Err(reason) => invalid.push(format!("{text:?} ({reason})")),
            }
        }
        if !invalid.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "invalid pattern{}: {}",
                if invalid.len() == 1 { "" } else { "s" },
                invalid.join(", ")
            )));
        }
        let groups = if compiled.is_empty() {
            Vec::new()
        } else {
            vec![Group {
                case_insensitive,
                patterns: compiled,
            }]
        };
        Ok(PatternSet { groups })
    }

    /// Whether the set holds no pattern at all (then nothing matches).
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Add the groups of `other` (e.g. `--iexclude` to `--exclude`): a path
    /// then matches when it matches either set.
    pub fn extend(&mut self, other: PatternSet) {
        self.groups.extend(other.groups);
    }

    /// Exclude semantics: whether `path` (absolute or relative, `/`-separated)
    /// or one of its parents matches, after negations.
    pub fn matches(&self, path: &str) -> bool {
        self.evaluate(path, false).0
    }

    /// Include semantics for restore (restic's `ChildMatch`): whether `path`
    /// or some path below it could match, i.e. whether a directory at `path`
    /// is worth descending into. Relative patterns may match at any depth, so
    /// only anchored ones ever rule a directory out.
    pub fn child_may_match(&self, path: &str) -> bool {
        self.evaluate(path, true).1
    }

    /// Both answers at once: `(matches(path), child_may_match(path))`.
    pub fn matches_with_child(&self, path: &str) -> (bool, bool) {
        self.evaluate(path, true)
    }

    fn evaluate(&self, path: &str, want_child: bool) -> (bool, bool) {
        if path.is_empty() {
            return (false, false);
        }
        let lowered = self
            .groups
            .iter()
            .any(|g| g.case_insensitive)
            .then(|| lowercase(path));
        let comps = split_path(path);
        let lowered_comps = lowered.as_deref().map(split_path);
        let (mut matched, mut child) = (false, false);
        for group in &self.groups {
            let comps = match &lowered_comps {
                Some(lowered) if group.case_insensitive => lowered,
                _ => &comps,
            };
            let (m, c) = group.evaluate(comps, want_child);
            matched |= m;
            child |= c;
            if matched && (child || !want_child) {
                break;
            }
        }
        (matched, child)
    }
}

impl Group {
    /// restic's `list`: patterns apply in order; a match sets the result, a
    /// negated match clears it. A negated pattern matching the path also
    /// rules out its children, since they match it too.
    fn evaluate(&self, comps: &[&str], want_child: bool) -> (bool, bool) {
        let (mut matched, mut child) = (false, false);
        for pattern in &self.patterns {
            let m = pattern.matches(comps);
            if pattern.negated {
                matched &= !m;
                child &= !m;
            } else {
                matched |= m;
                child |= !want_child || pattern.child_may_match(comps);
            }
        }
        (matched, child)
    }
}

impl Pattern {
    /// Parse one non-empty pattern (already lowercased if need be).
    fn parse(text: &str) -> Result<Pattern, String> {
        let (negated, body) = match text.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let cleaned = clean(body);
        let mut parts = Vec::new();
        let rest = match cleaned.strip_prefix('/') {
            Some(rest) => {
                parts.push(Part::Root);
                rest
            }
            None => cleaned.as_str(),
        };
        if rest.is_empty() {
            // Only "/" cleans to an empty remainder; restic reads it as "/**".
            parts.push(Part::AnyDepth);
        } else {
            for comp in rest.split('/') {
                parts.push(if comp == "**" {
                    Part::AnyDepth
                } else if comp.contains(['*', '?', '[', ']', '\\']) {
                    Part::Glob(Glob::parse(comp).map_err(|e| format!("{e} in {comp:?}"))?)
                } else {
                    Part::Literal(comp.to_owned())
                });
            }
        }
        Ok(Pattern { negated, parts })
    }

    fn anchored(&self) -> bool {
        matches!(self.parts.first(), Some(Part::Root))
    }

    /// Whether the pattern matches some run of consecutive components of
    /// `comps` (restic's `match`). Anchored patterns must start at the root
    /// marker; others may start at any component but the root marker. The run
    /// must not be empty (so `**` alone does not match `/`).
    ///
    /// restic expands each `**` into `*`s one at a time, and lets an expanded
    /// pattern grow only while it still fits the path with every `**` not yet
    /// expanded counted as one component. Worked out, leaving the `**` at
    /// part `q` after the run has consumed `c` components requires
    /// `c + parts ≤ components + q + 1`. So `/a/**/b/**` matches `/a/x/b/y`
    /// but not `/a/x/b`, and `/**/**/**` does not match `/c`; cairn keeps
    /// this so that exclude lists select the same files in both tools.
    ///
    /// Runs the pattern as an automaton over the components: `consumed[j]`
    /// is the fewest components any live run has consumed having matched
    /// `j` parts (fewer is never worse, as the constraint above only bounds
    /// it from above). A `**` absorbs components; reaching the end accepts.
    fn matches(&self, comps: &[&str]) -> bool {
        let parts = &self.parts;
        let n = parts.len();
        let anchored = self.anchored();
        let start = usize::from(!anchored && comps.first() == Some(&ROOT));
        let mut consumed: Vec<Option<usize>> = vec![None; n + 1];
        let mut next: Vec<Option<usize>> = vec![None; n + 1];
        // An anchored pattern starts at the first component only.
        consumed[0] = Some(0);
        for comp in comps.iter().skip(start) {
            if !anchored {
                consumed[0] = Some(0);
            }
            self.close(&mut consumed, comps.len());
            next.fill(None);
            for (j, part) in parts.iter().enumerate() {
                let Some(c) = consumed[j] else { continue };
                let to = match part {
                    Part::AnyDepth => j,
                    part if part.matches(comp) => j + 1,
                    _ => continue,
                };
                keep_fewest(&mut next[to], c + 1);
            }
            self.close(&mut next, comps.len());
            if next[n].is_some() {
                return true;
            }
            std::mem::swap(&mut consumed, &mut next);
        }
        false
    }

    /// Epsilon moves: leave a `**` (having matched zero or more components)
    /// if restic's length bound allows it (see [`Pattern::matches`]).
    fn close(&self, consumed: &mut [Option<usize>], comps: usize) {
        let n = self.parts.len();
        for (q, part) in self.parts.iter().enumerate() {
            if let (Part::AnyDepth, Some(c)) = (part, consumed[q]) {
                if c + n <= comps + q + 1 {
                    keep_fewest(&mut consumed[q + 1], c);
                }
            }
        }
    }

    /// Whether `comps` or a path below it could match (restic's
    /// `childMatch`): always for relative patterns; for anchored ones, the
    /// path must agree with the pattern component by component as far as
    /// both go, stopping at the first `**`.
    fn child_may_match(&self, comps: &[&str]) -> bool {
        if !self.anchored() {
            return true;
        }
        self.parts
            .iter()
            .zip(comps)
            .take_while(|(part, _)| !matches!(part, Part::AnyDepth))
            .all(|(part, comp)| part.matches(comp))
    }
}

fn keep_fewest(slot: &mut Option<usize>, c: usize) {
    *slot = Some(slot.map_or(c, |old| old.min(c)));
}

/// Split a path into components; an absolute path starts with [`ROOT`].
/// Trailing slashes are ignored, so `/` is the root alone (restic would add
/// an empty last component, which `*` matches).
fn split_path(path: &str) -> Vec<&str> {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return vec![ROOT];
    }
    let mut comps: Vec<&str> = trimmed.split('/').collect();
    if comps[0].is_empty() {
        comps[0] = ROOT;
    }
    comps
}

/// Go's `path.Clean`: drop empty and `.` components, resolve `..` against
/// the preceding component, drop `..` at the root; `""` becomes `"."`.
fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for comp in path.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|last| *last != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            comp => out.push(comp),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

/// Lowercase character by character, as Go's `strings.ToLower`.
fn lowercase(s: &str) -> String {
    s.chars().flat_map(char::to_lowercase).collect()
}

/// Read patterns from a file as restic does for `--exclude-file` and
/// `--include-file`: one pattern per line; surrounding whitespace trimmed;
/// blank lines and lines starting with `#` ignored; environment variables
/// (`$VAR`, `${VAR}`) expanded, `$$` for a literal `$`. A UTF-8 byte order
/// mark is skipped and UTF-16 files with a byte order mark are decoded.
pub fn read_pattern_file(path: &Path) -> Result<Vec<String>> {
    let what = || format!("pattern file {}", path.display());
    let bytes = std::fs::read(path).map_err(|e| Error::io(what(), e))?;
    let text = decode_text(&bytes)
        .map_err(|reason| Error::InvalidArgument(format!("{}: {reason}", what())))?;
    Ok(parse_pattern_lines(&text, |name| {
        std::env::var(name).unwrap_or_default()
    }))
}

/// The lines of a pattern file that hold patterns, expanded with `getenv`.
fn parse_pattern_lines(text: &str, getenv: impl Fn(&str) -> String) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| expand_env(line, &getenv))
        .filter(|line| !line.is_empty())
        .collect()
}

/// Decode a text file as restic's `textfile.Read`: UTF-8, with an optional
/// byte order mark, or UTF-16 announced by its byte order mark.
fn decode_text(bytes: &[u8]) -> Result<String, String> {
    let utf16 = |rest: &[u8], big_endian: bool| -> String {
        let units = rest.chunks(2).map(|pair| match (pair, big_endian) {
            ([hi, lo], true) | ([lo, hi], false) => u16::from_be_bytes([*hi, *lo]),
            // A dangling odd byte decodes to U+FFFD, as a lone surrogate.
            _ => 0xD800,
        });
        char::decode_utf16(units)
            .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect()
    };
    match bytes {
        [0xEF, 0xBB, 0xBF, rest @ ..] => utf8(rest),
        [0xFE, 0xFF, rest @ ..] => Ok(utf16(rest, true)),
        [0xFF, 0xFE, rest @ ..] => Ok(utf16(rest, false)),
        _ => utf8(bytes),
    }
}

fn utf8(bytes: &[u8]) -> Result<String, String> {
    String::from_utf8(bytes.to_vec()).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let line = bytes[..offset].iter().filter(|&&b| b == b'\n').count() + 1;
        format!("not valid UTF-8 (line {line})")
    })
}

/// Go's `os.Expand` with restic's mapping: `$$` is `$`, unset variables are
/// empty. Names are `${anything}`, a run of ASCII letters, digits and `_`, or
/// one shell special character (`*#$@!?-` or a digit). Malformed `${` or
/// `${}` is dropped; a `$` not followed by a name stays.
fn expand_env(s: &str, getenv: impl Fn(&str) -> String) -> String {
    let special = |b: u8| b"*#$@!?-0123456789".contains(&b);
    let word = |b: u8| b == b'_' || b.is_ascii_alphanumeric();
    let lookup = |name: &str| {
        if name == "$" {
            "$".to_owned()
        } else {
            getenv(name)
        }
    };
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        let bytes = after.as_bytes();
        // `consumed` counts bytes of `after` used by the name and its syntax.
        let consumed = match bytes.first() {
            None => {
                out.push('$');
                0
            }
            Some(b'{') => {
                if bytes.len() > 2 && special(bytes[1]) && bytes[2] == b'}' {
                    out.push_str(&lookup(&after[1..2]));
                    3
                } else {
                    match after.find('}') {
                        Some(1) => 2, // "${}": bad syntax, dropped
                        Some(close) => {
                            out.push_str(&lookup(&after[1..close]));
                            close + 1
                        }
                        None => 1, // "${" without "}": bad syntax, dropped
                    }
                }
            }
            Some(&b) if special(b) => {
                out.push_str(&lookup(&after[..1]));
                1
            }
            Some(_) => {
                let len = bytes.iter().take_while(|&&b| word(b)).count();
                if len == 0 {
                    out.push('$');
                } else {
                    out.push_str(&lookup(&after[..len]));
                }
                len
            }
        };
        rest = &after[consumed..];
    }
    out.push_str(rest);
    out
}
