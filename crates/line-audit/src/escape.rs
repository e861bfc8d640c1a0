//! Reversible escaping of field values, so that one record is always one line.
//!
//! The escaped form of a value never contains a tab, a carriage return, a line feed, any
//! other control character, or a Unicode line or paragraph separator. It is produced by
//! [`escape`] and reversed exactly by [`unescape`]:
//!
//! | in the value                                   | written as   |
//! |------------------------------------------------|--------------|
//! | `\` (backslash)                                | `\\`         |
//! | tab, line feed, carriage return                | `\t` `\n` `\r` |
//! | other C0 controls and DEL (`U+0000`–`U+001F`, `U+007F`) | `\xNN` (two hex digits) |
//! | C1 controls (`U+0080`–`U+009F`), `U+2028`, `U+2029` | `\u{XXXX}`  |
//!
//! Everything else is copied unchanged, so ordinary URLs and paths (the guideline's example
//! rows) are written byte for byte.
//!
//! Optional columns (the request id, the bodies) use `-` for "absent"; a value that *is* a
//! single `-` is written as `\x2d` by [`escape_opt`] so the two stay distinguishable.
//!
//! ## Capped values
//!
//! The writer caps every value ([`escape_capped_into`], [`crate::AuditConfig::max_value_bytes`],
//! default 2 KiB): when the escaped form of a value is longer than the cap, it is cut on a
//! character boundary (never inside an escape sequence) so that the kept part is at most the
//! cap, and the marker `…[truncated N bytes]` follows, N being how many bytes of the original
//! (unescaped) value were left out. The marker is ordinary text (no control character, no
//! tab), so a capped record is still one line in the guideline's format and every reader
//! parses it; [`split_truncated`] tells a reader that a value was cut, and by how much. An
//! anonymous callback with a 50 KB query thus costs about 2.1 KB of log, not 50 KB.
//!
//! The marker is informational: a value received from outside could end with the same text.
//! It never hides data that was written; it only says that the writer dropped the rest.

use std::fmt::Write as _;

use crate::AuditError;

/// Whether `c` must be escaped.
fn needs_escape(c: char) -> bool {
    c == '\\' || c.is_control() || c == '\u{2028}' || c == '\u{2029}'
}

/// Whether a byte may start something to escape: a C0 control, DEL, a backslash, or the
/// first byte of a C1 control (`0xC2`) or of `U+2028`/`U+2029` (`0xE2`). A cheap
/// over-approximation; the slow path decides per character.
#[inline]
fn suspicious(b: u8) -> bool {
    b < 0x20 || b == 0x7f || b == b'\\' || b == 0xc2 || b == 0xe2
}

/// Appends the escaped form of `value` to `out`.
pub fn escape_into(value: &str, out: &mut String) {
    // Fast path: most values (URLs, methods, ids) need no escaping at all.
    if !value.bytes().any(suspicious) || !value.chars().any(needs_escape) {
        out.push_str(value);
        return;
    }
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:04x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// What [`escape_capped_into`] puts after a cut value, before the number of bytes left out.
pub const TRUNCATION_MARKER: &str = "…[truncated ";

/// Appends the escaped form of `value`, cut (on a character boundary) so that the escaped
/// part is at most `max` bytes, followed by `…[truncated N bytes]` when anything was cut
/// (N: bytes of `value` left out). Returns whether the value was cut. With `usize::MAX` this
/// is [`escape_into`].
pub fn escape_capped_into(value: &str, max: usize, out: &mut String) -> bool {
    // Fast path: a short value, or one that needs no escaping and fits.
    if value.len() <= max
        && (value.len().saturating_mul(4) <= max || !value.bytes().any(suspicious))
    {
        escape_into(value, out);
        return false;
    }
    if !value.bytes().any(suspicious) {
        // Nothing to escape: cut on the last character boundary within the cap.
        let mut end = max.min(value.len());
        while !value.is_char_boundary(end) {
            end -= 1;
        }
        out.push_str(&value[..end]);
        push_truncated(value.len() - end, out);
        return true;
    }
    let start = out.len();
    let mut kept = value.len();
    for (i, c) in value.char_indices() {
        let before = out.len();
        escape_into(c.encode_utf8(&mut [0u8; 4]), out);
        if out.len() - start > max {
            out.truncate(before);
            kept = i;
            break;
        }
    }
    if kept == value.len() {
        return false;
    }
    push_truncated(value.len() - kept, out);
    true
}

/// `value` itself when at most `max` bytes long, else its longest prefix of at most `max`
/// bytes that ends on a character boundary, followed by `…[truncated N bytes]`. For formats
/// that do their own escaping (JSON Lines).
pub fn cap_value(value: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if value.len() <= max {
        return std::borrow::Cow::Borrowed(value);
    }
    let mut end = max;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    let mut s = String::with_capacity(end + 32);
    s.push_str(&value[..end]);
    push_truncated(value.len() - end, &mut s);
    std::borrow::Cow::Owned(s)
}

fn push_truncated(left_out: usize, out: &mut String) {
    out.push_str(TRUNCATION_MARKER);
    let _ = write!(out, "{left_out} bytes]");
}

/// Splits a (unescaped) value written by a capped writer into the kept part and the number
/// of bytes left out, when it ends with the truncation marker; otherwise `(value, None)`.
pub fn split_truncated(value: &str) -> (&str, Option<u64>) {
    let Some(body) = value.strip_suffix(" bytes]") else {
        return (value, None);
    };
    let Some(at) = body.rfind(TRUNCATION_MARKER) else {
        return (value, None);
    };
    let digits = &body[at + TRUNCATION_MARKER.len()..];
    match digits.parse::<u64>() {
        Ok(n) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
            (&value[..at], Some(n))
        }
        _ => (value, None),
    }
}

/// The escaped form of `value` (see the [module docs](self)).
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    escape_into(value, &mut out);
    out
}

/// Appends an optional value: `-` when absent, `\x2d` for a value that is exactly `-`.
pub fn escape_opt_into(value: Option<&str>, out: &mut String) {
    match value {
        None => out.push('-'),
        Some("-") => out.push_str("\\x2d"),
        Some(v) => escape_into(v, out),
    }
}

/// The escaped form of an optional value (see [`escape_opt_into`]).
pub fn escape_opt(value: Option<&str>) -> String {
    let mut out = String::new();
    escape_opt_into(value, &mut out);
    out
}

/// Reverses [`escape`]. Fails on an unknown or truncated escape sequence.
pub fn unescape(escaped: &str) -> Result<String, AuditError> {
    if !escaped.contains('\\') {
        return Ok(escaped.to_owned());
    }
    let bad = |why: &str| AuditError::Escape {
        value: escaped.chars().take(80).collect(),
        reason: why.to_owned(),
    };
    let mut out = String::with_capacity(escaped.len());
    let mut chars = escaped.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('x') => {
                let hex: String = chars.by_ref().take(2).collect();
                if hex.len() != 2 {
                    return Err(bad("truncated \\x escape"));
                }
                let code = u32::from_str_radix(&hex, 16).map_err(|_| bad("bad \\x escape"))?;
                out.push(char::from_u32(code).ok_or_else(|| bad("bad \\x escape"))?);
            }
            Some('u') => {
                if chars.next() != Some('{') {
                    return Err(bad("bad \\u escape"));
                }
                let mut hex = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(h) if h.is_ascii_hexdigit() && hex.len() < 6 => hex.push(h),
                        _ => return Err(bad("bad \\u escape")),
                    }
                }
                let code = u32::from_str_radix(&hex, 16).map_err(|_| bad("bad \\u escape"))?;
                out.push(char::from_u32(code).ok_or_else(|| bad("bad \\u escape"))?);
            }
            Some(_) => return Err(bad("unknown escape")),
            None => return Err(bad("trailing backslash")),
        }
    }
    Ok(out)
}

/// Reverses [`escape_opt`]: `-` is `None`.
pub fn unescape_opt(escaped: &str) -> Result<Option<String>, AuditError> {
    if escaped == "-" {
        Ok(None)
    } else {
        unescape(escaped).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_values_are_unchanged() {
        let url = "https://access.line.me/oauth2/v2.1/authorize?response_type=code&client_id=1";
        assert_eq!(escape(url), url);
    }

    #[test]
    fn controls_are_escaped_and_reversed() {
        let v = "a\tb\nc\rd\\e\u{0}f\u{7f}g\u{85}h\u{2028}";
        let e = escape(v);
        assert_eq!(e, "a\\tb\\nc\\rd\\\\e\\x00f\\x7fg\\u{0085}h\\u{2028}");
        assert_eq!(unescape(&e).unwrap(), v);
    }

    #[test]
    fn optional_dash_is_distinct() {
        assert_eq!(escape_opt(None), "-");
        assert_eq!(escape_opt(Some("-")), "\\x2d");
        assert_eq!(unescape_opt("-").unwrap(), None);
        assert_eq!(unescape_opt("\\x2d").unwrap().as_deref(), Some("-"));
    }

    #[test]
    fn capped_values_are_cut_on_a_boundary_with_a_marker() {
        let mut out = String::new();
        assert!(!escape_capped_into("short", 64, &mut out));
        assert_eq!(out, "short");
        let long = "a".repeat(100);
        out.clear();
        assert!(escape_capped_into(&long, 64, &mut out));
        assert_eq!(out, format!("{}…[truncated 36 bytes]", "a".repeat(64)));
        assert_eq!(split_truncated(&out), (&long[..64], Some(36)));
        // Never inside a multi-byte character.
        let wide = "é".repeat(50); // 100 bytes
        out.clear();
        assert!(escape_capped_into(&wide, 63, &mut out));
        assert_eq!(out, format!("{}…[truncated 38 bytes]", "é".repeat(31)));
        // Escaping counts against the cap, and an escape sequence is never split:
        // 20 control characters escape to 80 bytes; a cap of 10 keeps two of them.
        let ctl: String = std::iter::repeat_n('\u{1}', 20).collect();
        out.clear();
        assert!(escape_capped_into(&ctl, 10, &mut out));
        assert_eq!(out, "\\x01\\x01…[truncated 18 bytes]");
        assert!(!out.contains('\t') && !out.contains('\n'));
        let tabs = "\t".repeat(10);
        out.clear();
        assert!(escape_capped_into(&tabs, 5, &mut out));
        assert_eq!(out, "\\t\\t…[truncated 8 bytes]");
        assert_eq!(
            unescape(&out).unwrap(),
            format!("\t\t{TRUNCATION_MARKER}8 bytes]")
        );
        // Exactly the cap is not cut; the JSON variant cuts raw bytes.
        out.clear();
        assert!(!escape_capped_into(&long, 100, &mut out));
        assert_eq!(cap_value(&long, 100), long.as_str());
        assert_eq!(cap_value(&wide, 3), "é…[truncated 98 bytes]");
        assert_eq!(split_truncated("plain"), ("plain", None));
        assert_eq!(
            split_truncated("x…[truncated  bytes]"),
            ("x…[truncated  bytes]", None)
        );
    }

    #[test]
    fn bad_escapes_fail() {
        for bad in ["\\", "\\q", "\\x1", "\\u{zz}", "\\u{110000}", "\\u0041"] {
            assert!(unescape(bad).is_err(), "{bad}");
        }
    }
}
