//! Wildcards within one path component, with the syntax of Go's
//! `filepath.Match` (which restic's patterns use for every component):
//!
//! - `*` matches any run of characters, `?` exactly one character;
//! - `[abc]`, `[a-z]`, `[^a-z]` match one character in (or, with `^`, not in)
//!   the class; a class holds at least one item, and `-` or `]` must be
//!   escaped inside it;
//! - `\c` matches `c` literally, also inside classes;
//! - any other character matches itself.
//!
//! Components never contain `/`, so `*` and `?` need not stop at separators.
//! Characters are Unicode scalar values, as Go's runes.
//!
//! Invariant: a [`Glob`] exists only if its whole text parsed. Go reports a
//! malformed pattern only when matching reaches the bad spot; here every
//! malformed pattern is rejected up front, so matching cannot fail.

/// One compiled component pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Glob {
    tokens: Vec<Token>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    /// One literal character.
    Char(char),
    /// `?`
    AnyChar,
    /// `*` (consecutive stars are merged into one).
    Star,
    /// `[...]`: matches a character in one of the inclusive ranges, or in
    /// none of them when negated.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl Token {
    /// Whether this single-character token accepts `c` (`Star` never does:
    /// the matcher handles it).
    fn accepts(&self, c: char) -> bool {
        match self {
            Token::Char(want) => *want == c,
            Token::AnyChar => true,
            Token::Star => false,
            Token::Class { negated, ranges } => {
                ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
            }
        }
    }
}

impl Glob {
    /// Parse one component pattern; the error says what is malformed.
    pub(super) fn parse(text: &str) -> Result<Glob, &'static str> {
        let mut tokens = Vec::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            let token = match c {
                '*' => {
                    if tokens.last() == Some(&Token::Star) {
                        continue;
                    }
                    Token::Star
                }
                '?' => Token::AnyChar,
                '\\' => Token::Char(chars.next().ok_or("trailing backslash")?),
                '[' => {
                    let negated = chars.next_if_eq(&'^').is_some();
                    let mut ranges = Vec::new();
                    loop {
                        if !ranges.is_empty() && chars.next_if_eq(&']').is_some() {
                            break;
                        }
                        let lo = class_char(&mut chars)?;
                        let hi = if chars.next_if_eq(&'-').is_some() {
                            class_char(&mut chars)?
                        } else {
                            lo
                        };
                        ranges.push((lo, hi));
                    }
                    Token::Class { negated, ranges }
                }
                other => Token::Char(other),
            };
            tokens.push(token);
        }
        Ok(Glob { tokens })
    }

    /// Whether `text` matches the whole pattern.
    ///
    /// Classic single-backtrack wildcard matching: on a mismatch, retry from
    /// the most recent `*` with that star swallowing one more character.
    /// Tokens other than `*` consume exactly one character, so revisiting
    /// only the latest star is complete, and the cost is O(pattern × text).
    pub(super) fn matches(&self, text: &str) -> bool {
        let tokens = &self.tokens;
        let mut t = 0; // next token
        let mut i = 0; // byte offset of the next character of `text`
        let mut backtrack: Option<(usize, usize)> = None; // (star token, resume offset)
        while let Some(c) = text[i..].chars().next() {
            match tokens.get(t) {
                Some(Token::Star) => {
                    backtrack = Some((t, i));
                    t += 1;
                    continue;
                }
                Some(token) if token.accepts(c) => {
                    t += 1;
                    i += c.len_utf8();
                    continue;
                }
                _ => {}
            }
            match backtrack {
                Some((star, from)) => {
                    let Some(skipped) = text[from..].chars().next() else {
                        return false;
                    };
                    let resume = from + skipped.len_utf8();
                    backtrack = Some((star, resume));
                    t = star + 1;
                    i = resume;
                }
                None => return false,
            }
        }
        tokens[t..].iter().all(|token| *token == Token::Star)
    }
}

/// One possibly escaped character of a class (Go's `getEsc`): `-` and `]`
/// must be escaped, and the class must not end here.
fn class_char(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<char, &'static str> {
    match chars.next() {
        None => Err("unterminated character class"),
        Some('-') => Err("unescaped '-' in character class"),
        Some(']') => Err("empty character class or unescaped ']'"),
        Some('\\') => chars.next().ok_or("unterminated character class"),
        Some(c) => Ok(c),
    }
}

#[cfg(test)]
mod tests {
    use super::Glob;

    fn glob_match(pattern: &str, text: &str) -> bool {
        Glob::parse(pattern)
            .unwrap_or_else(|e| panic!("{pattern:?}: {e}"))
            .matches(text)
    }

    /// Cases of Go's own `filepath.Match` tests that involve no separator.
    #[test]
    fn go_match_cases() {
        let cases: &[(&str, &str, bool)] = &[
            ("abc", "abc", true),
            ("*", "abc", true),
            ("*c", "abc", true),
            ("a*", "a", true),
            ("a*", "abc", true),
            ("a*", "ab", true),
            ("a*b*c*d*e*", "axbxcxdxe", true),
            ("a*b?c*x", "abxbbxdbxebxczzx", true),
            ("a*b?c*x", "abxbbxdbxebxczzy", false),
            ("ab[c]", "abc", true),
            ("ab[b-d]", "abc", true),
            ("ab[e-g]", "abc", false),
            ("ab[^c]", "abc", false),
            ("ab[^b-d]", "abc", false),
            ("ab[^e-g]", "abc", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "ab", false),
            ("a?b", "a☺b", true),
            ("a[^a]b", "a☺b", true),
            ("a???b", "a☺b", false),
            ("a[^a][^a][^a]b", "a☺b", false),
            ("[a-ζ]*", "α", true),
            ("*[a-ζ]", "A", false),
            ("[\\]a]", "]", true),
            ("[\\-]", "-", true),
            ("[x\\-]", "x", true),
            ("[x\\-]", "-", true),
            ("[x\\-]", "z", false),
            ("[\\-x]", "x", true),
            ("[\\-x]", "-", true),
            ("[\\-x]", "a", false),
            ("*x", "xxx", true),
            ("", "", true),
            ("", "a", false),
            ("*", "", true),
            ("?", "", false),
            ("[[]", "[", true),
            ("]", "]", true),
            ("[*]", "*", true),
            ("[*]", "x", false),
            ("[z-a]", "m", false),
            ("[^z-a]", "m", true),
            ("a**b", "axyb", true),
        ];
        for &(pattern, text, want) in cases {
            assert_eq!(glob_match(pattern, text), want, "{pattern:?} vs {text:?}");
        }
    }

    #[test]
    fn malformed_patterns_are_rejected() {
        for bad in [
            "[", "[^", "[^]", "[]", "[]a]", "[a", "[a-", "[a-]", "[-a]", "[a-b-c]", "a\\", "[\\",
            "[x\\", "x[", "*[", "[z-a][", "ab[^c",
        ] {
            assert!(Glob::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn star_backtracking_is_not_exponential() {
        let text = "a".repeat(5_000);
        assert!(!glob_match("*a*a*a*a*a*a*a*b", &text));
        assert!(glob_match("*a*a*a*a*a*a*a*", &text));
    }
}
