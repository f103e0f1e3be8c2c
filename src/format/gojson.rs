//! Byte-exact reproduction of what Go's `encoding/json` and `strconv.Quote`
//! write, so the JSON cairn produces is the JSON restic would produce for
//! the same values (and a tree blob gets the same id).
//!
//! What Go's JSON encoder does beyond plain JSON:
//! - `<`, `>` and `&` are written as `\u003c`, `\u003e`, `\u0026`, and
//!   U+2028/U+2029 as `\u2028`/`\u2029` ("HTML-safe" output);
//! - control characters are `\n`, `\r`, `\t`, `\b`, `\f` or `\u00XX` (Go
//!   1.22 and later; restic builds older than 0.17 wrote `\u0008`/`\u000c`);
//! - every byte of a string that is not part of valid UTF-8 becomes `\ufffd`;
//! - maps are written with their keys sorted.
//!
//! Node names additionally pass through `strconv.Quote` (see [`quote`]),
//! which keeps arbitrary bytes intact as `\xNN` escapes.
//!
//! Reading goes through serde; [`null_default`] gives Go's treatment of
//! `null` (leave the zero value) to fields that are not `Option`s.

use std::io;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::ser::Formatter;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// A serde_json formatter adding Go's HTML-safe escapes to serde_json's
/// compact output; together they write exactly what `json.Marshal` writes
/// for valid UTF-8 strings.
pub(crate) struct GoFormatter;

impl Formatter for GoFormatter {
    fn write_string_fragment<W>(&mut self, writer: &mut W, fragment: &str) -> io::Result<()>
    where
        W: ?Sized + io::Write,
    {
        let bytes = fragment.as_bytes();
        let mut start = 0;
        let mut i = 0;
        while i < bytes.len() {
            let escape: Option<&[u8]> = match bytes[i] {
                b'<' => Some(b"\\u003c"),
                b'>' => Some(b"\\u003e"),
                b'&' => Some(b"\\u0026"),
                // U+2028 and U+2029 are E2 80 A8 / E2 80 A9 in UTF-8.
                0xe2 if bytes.get(i + 1) == Some(&0x80) => match bytes.get(i + 2) {
                    Some(0xa8) => Some(b"\\u2028"),
                    Some(0xa9) => Some(b"\\u2029"),
                    _ => None,
                },
                _ => None,
            };
            match escape {
                Some(esc) => {
                    writer.write_all(&bytes[start..i])?;
                    writer.write_all(esc)?;
                    i += if bytes[i] == 0xe2 { 3 } else { 1 };
                    start = i;
                }
                None => i += 1,
            }
        }
        writer.write_all(&bytes[start..])
    }
}

/// `json.Marshal(value)`: compact JSON with Go's escaping.
pub(crate) fn to_vec<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, GoFormatter);
    // Serializing our own types into a Vec cannot fail: they hold no maps
    // with non-string keys and no custom `Serialize` that errors.
    if let Err(e) = value.serialize(&mut ser) {
        log::error!("JSON encoding failed unexpectedly: {e}");
    }
    out
}

/// Append `s` as a JSON string literal exactly as Go encodes a `string`
/// holding these bytes (invalid UTF-8 becomes `\ufffd`, byte by byte).
pub(crate) fn write_string(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for chunk in s.utf8_chunks() {
        let valid = chunk.valid().as_bytes();
        let mut start = 0;
        let mut i = 0;
        while i < valid.len() {
            let b = valid[i];
            let escape: Option<&[u8]> = match b {
                b'"' => Some(b"\\\""),
                b'\\' => Some(b"\\\\"),
                b'\n' => Some(b"\\n"),
                b'\r' => Some(b"\\r"),
                b'\t' => Some(b"\\t"),
                0x08 => Some(b"\\b"),
                0x0c => Some(b"\\f"),
                b'<' => Some(b"\\u003c"),
                b'>' => Some(b"\\u003e"),
                b'&' => Some(b"\\u0026"),
                0xe2 if valid.get(i + 1) == Some(&0x80)
                    && matches!(valid.get(i + 2), Some(0xa8 | 0xa9)) =>
                {
                    if valid[i + 2] == 0xa8 {
                        Some(b"\\u2028")
                    } else {
                        Some(b"\\u2029")
                    }
                }
                _ => None,
            };
            if let Some(esc) = escape {
                out.extend_from_slice(&valid[start..i]);
                out.extend_from_slice(esc);
                i += if b == 0xe2 { 3 } else { 1 };
                start = i;
            } else if b < 0x20 {
                out.extend_from_slice(&valid[start..i]);
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
                i += 1;
                start = i;
            } else {
                i += 1;
            }
        }
        out.extend_from_slice(&valid[start..]);
        for _ in chunk.invalid() {
            out.extend_from_slice(b"\\ufffd");
        }
    }
    out.push(b'"');
}

/// Go's `strconv.Quote(s)` without the surrounding quotes: printable runes
/// stay as they are, everything else becomes an escape, and bytes that are
/// not valid UTF-8 become `\xNN`. The result is always valid UTF-8.
///
/// Printability follows Go's `unicode.IsPrint` (letters, marks, numbers,
/// punctuation, symbols and the ASCII space) for everything a file name
/// realistically holds: controls, non-ASCII spaces, format characters,
/// private-use and non-characters are escaped. Code points unassigned in
/// Unicode but inside assigned blocks count as printable here while Go
/// escapes them; such a name then decodes identically but its tree blob's
/// bytes differ from restic's.
pub(crate) fn quote(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for chunk in s.utf8_chunks() {
        for c in chunk.valid().chars() {
            quote_char(&mut out, c);
        }
        for &b in chunk.invalid() {
            push_hex_byte(&mut out, b);
        }
    }
    out
}

fn push_hex_byte(out: &mut String, b: u8) {
    out.push_str("\\x");
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 0xf)]));
}

fn quote_char(out: &mut String, c: char) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        c if is_print(c) => out.push(c),
        '\x07' => out.push_str("\\a"),
        '\x08' => out.push_str("\\b"),
        '\x0c' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\x0b' => out.push_str("\\v"),
        c if (c as u32) < 0x20 || c == '\x7f' => push_hex_byte(out, c as u8),
        c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
        c => out.push_str(&format!("\\U{:08x}", c as u32)),
    }
}

/// Go's `unicode.IsPrint`, see [`quote`] for the approximation made.
fn is_print(c: char) -> bool {
    let u = c as u32;
    if u < 0x80 {
        return (0x20..0x7f).contains(&u);
    }
    let not_print = matches!(u,
        // C1 controls, NO-BREAK SPACE, SOFT HYPHEN
        0x80..=0xa0 | 0xad
        // Arabic, Syriac and Mongolian format characters
        | 0x0600..=0x0605 | 0x061c | 0x06dd | 0x070f | 0x0890..=0x0891 | 0x08e2 | 0x180e
        // OGHAM SPACE MARK, general punctuation spaces and format characters
        | 0x1680 | 0x2000..=0x200f | 0x2028..=0x202f | 0x205f..=0x206f | 0x3000
        // private use area, Arabic non-characters, BOM, interlinear annotation
        | 0xe000..=0xf8ff | 0xfdd0..=0xfdef | 0xfeff | 0xfff9..=0xfffb
        // supplementary format characters
        | 0x110bd | 0x110cd | 0x13430..=0x1343f | 0x1bca0..=0x1bca3 | 0x1d173..=0x1d17a
        // unassigned planes 4-13, tags, supplementary private use
        | 0x40000..=0xdffff | 0xe0000..=0xe00ff | 0xe01f0..=0x10ffff
    );
    // U+xFFFE and U+xFFFF are non-characters in every plane.
    !not_print && (u & 0xfffe) != 0xfffe
}

/// Go's `strconv.Unquote` applied to `"` + `s` + `"`: the bytes a quoted
/// node name stands for, or `None` if `s` is not a valid Go string body.
pub(crate) fn unquote(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'"' | b'\n' => return None,
            b'\\' => {
                let esc = *bytes.get(i + 1)?;
                i += 2;
                match esc {
                    b'a' => out.push(0x07),
                    b'b' => out.push(0x08),
                    b'f' => out.push(0x0c),
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'v' => out.push(0x0b),
                    b'\\' => out.push(b'\\'),
                    b'"' => out.push(b'"'),
                    b'x' => {
                        out.push(u8::try_from(hex_value(bytes.get(i..i + 2)?)?).ok()?);
                        i += 2;
                    }
                    b'u' | b'U' => {
                        let n = if esc == b'u' { 4 } else { 8 };
                        let c = char::from_u32(hex_value(bytes.get(i..i + n)?)?)?;
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                        i += n;
                    }
                    b'0'..=b'7' => {
                        let digits = bytes.get(i - 1..i + 2)?;
                        let mut v: u32 = 0;
                        for &d in digits {
                            if !(b'0'..=b'7').contains(&d) {
                                return None;
                            }
                            v = v * 8 + u32::from(d - b'0');
                        }
                        out.push(u8::try_from(v).ok()?);
                        i += 2;
                    }
                    _ => return None,
                }
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(out)
}

fn hex_value(digits: &[u8]) -> Option<u32> {
    digits.iter().try_fold(0u32, |acc, &d| {
        let v = char::from(d).to_digit(16)?;
        Some(acc << 4 | v)
    })
}

/// Deserialize a field the way Go does: `null` leaves the zero value.
/// Use with `#[serde(default, deserialize_with = "null_default")]`.
pub(crate) fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(s: &[u8]) -> String {
        let mut out = Vec::new();
        write_string(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strings_are_escaped_like_go() {
        assert_eq!(enc(b"plain"), r#""plain""#);
        assert_eq!(enc(b"h<&>"), r#""h\u003c\u0026\u003e""#);
        assert_eq!(enc(b"x\"y\\z"), r#""x\"y\\z""#);
        assert_eq!(
            enc(b"a\nb\tc\rd\x08\x0c\x01\x1f\x7f"),
            "\"a\\nb\\tc\\rd\\b\\f\\u0001\\u001f\x7f\""
        );
        assert_eq!(enc("\u{2028}\u{2029}é".as_bytes()), "\"\\u2028\\u2029é\"");
        // One replacement per invalid byte, as Go's decoder sees them.
        assert_eq!(enc(b"tgt\xfe"), r#""tgt\ufffd""#);
        assert_eq!(enc(b"a\xe2\x82b"), r#""a\ufffd\ufffdb""#);
        assert_eq!(enc(b"\xed\xa0\x80"), r#""\ufffd\ufffd\ufffd""#);
    }

    #[test]
    fn formatter_agrees_with_byte_encoder_on_valid_utf8() {
        for s in [
            "",
            "a<b>&c",
            "\u{2028}x\u{2029}",
            "\"\\/",
            "\x00\x07\x08\x0c\x1b\x7f",
            "日本語 ü \u{fffd}",
            "\u{e2}\u{80}",
        ] {
            assert_eq!(
                String::from_utf8(to_vec(s)).unwrap(),
                enc(s.as_bytes()),
                "{s:?}"
            );
        }
    }

    #[test]
    fn quote_matches_strconv() {
        assert_eq!(quote(b"file.txt"), "file.txt");
        assert_eq!(quote(b"bad\xffname"), "bad\\xffname");
        assert_eq!(quote(b"a\"b\\c"), "a\\\"b\\\\c");
        assert_eq!(
            quote(b"\x07\x08\x0c\n\r\t\x0b\x00\x1b\x7f"),
            "\\a\\b\\f\\n\\r\\t\\v\\x00\\x1b\\x7f"
        );
        assert_eq!(
            quote("\u{85}\u{a0}\u{ad}\u{200d}\u{feff}".as_bytes()),
            "\\u0085\\u00a0\\u00ad\\u200d\\ufeff"
        );
        assert_eq!(quote("\u{f0000}".as_bytes()), "\\U000f0000");
        assert_eq!(
            quote("Grüße 日本 😀 \u{fe0f}".as_bytes()),
            "Grüße 日本 😀 \u{fe0f}"
        );
        assert_eq!(quote(b"\xe2\x82"), "\\xe2\\x82");
    }

    #[test]
    fn unquote_inverts_quote() {
        let samples: [&[u8]; 7] = [
            b"",
            b"bad\xffname",
            b"\x00\x01\x7f\x80\xff",
            "tab\there \"q\" \\ ünï \u{200b} \u{10ffff}".as_bytes(),
            b"\xe2\x82\xac\xe2\x82",
            b"new\nline",
            "\u{fffd}".as_bytes(),
        ];
        for s in samples {
            assert_eq!(unquote(&quote(s)).as_deref(), Some(s), "{s:?}");
        }
        assert_eq!(unquote(r"\101\x41\u0041\U00000041").unwrap(), b"AAAA");
    }

    #[test]
    fn unquote_rejects_what_go_rejects() {
        for bad in [
            "a\"b",
            "a\nb",
            "\\",
            "\\q",
            "\\x4",
            "\\xzz",
            "\\ud800",
            "\\U00110000",
            "\\400",
            "\\08",
            "\\'",
        ] {
            assert_eq!(unquote(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn null_means_zero_value() {
        #[derive(Deserialize)]
        struct S {
            #[serde(default, deserialize_with = "null_default")]
            a: String,
            #[serde(default, deserialize_with = "null_default")]
            b: Vec<u32>,
        }
        let s: S = serde_json::from_str(r#"{"a":null,"b":null}"#).unwrap();
        assert!(s.a.is_empty() && s.b.is_empty());
        let s: S = serde_json::from_str(r#"{}"#).unwrap();
        assert!(s.a.is_empty() && s.b.is_empty());
    }
}
