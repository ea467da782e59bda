//! Caller input inside messages, and the characters text may hold.
//!
//! Error messages name what was wrong, often by quoting it; a caller may send megabytes, so
//! every quote of caller input goes through [`quote`], which keeps at most
//! [`MAX_QUOTED_CHARS`] characters and says how long the whole value was. Together with the
//! fixed text around it, that keeps every refusal's message well under 1 KiB.

use crate::error::DomainError;

/// Most characters of caller input a message quotes (after escaping).
pub const MAX_QUOTED_CHARS: usize = 200;

/// `value` quoted and escaped as Rust's `{:?}` does (so control characters are visible and
/// cannot break a log line or a header), cut to [`MAX_QUOTED_CHARS`] characters; a cut value
/// ends with `…` and says how many bytes the whole value had.
pub fn quote(value: &str) -> String {
    // Escaping makes a character at most 10 characters long (`\u{10ffff}`); the prefix
    // escaped here is therefore never much longer than what is kept.
    let prefix: String = value.chars().take(MAX_QUOTED_CHARS).collect();
    let escaped = format!("{prefix:?}");
    let cut = prefix.len() < value.len() || escaped.chars().count() > MAX_QUOTED_CHARS;
    if !cut {
        return escaped;
    }
    let kept: String = escaped.chars().take(MAX_QUOTED_CHARS).collect();
    format!("{kept}…\" (truncated; {} bytes in all)", value.len())
}

/// Whether a character is refused in text: the C0 controls but tab, line feed and carriage
/// return (when `line_breaks` allows them), DEL and the C1 controls. NUL included.
fn refused(c: char, line_breaks: bool) -> bool {
    match c {
        '\t' | '\n' | '\r' => !line_breaks,
        c => c.is_control(),
    }
}

/// Refuses control characters in text. Free text (`line_breaks`: summaries, notes, reasons,
/// section texts) may hold tabs and line breaks; one-line values (names, titles, the actor,
/// idempotency keys) may not.
pub fn check_no_control(
    field: &'static str,
    value: &str,
    line_breaks: bool,
) -> Result<(), DomainError> {
    match value.char_indices().find(|(_, c)| refused(*c, line_breaks)) {
        None => Ok(()),
        Some((at, c)) => Err(DomainError::invalid(
            field,
            format!(
                "must not contain control characters{}, found {c:?} at byte {at}",
                if line_breaks {
                    " (tab, line feed and carriage return are allowed)"
                } else {
                    ""
                }
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_are_quoted_whole() {
        assert_eq!(quote("2026-1-1"), "\"2026-1-1\"");
        assert_eq!(quote("a\0b"), "\"a\\0b\"");
    }

    #[test]
    fn long_values_are_cut_and_say_so() {
        let q = quote(&"x".repeat(1 << 20));
        assert!(q.len() < 260, "{}", q.len());
        assert!(q.ends_with("(truncated; 1048576 bytes in all)"), "{q}");
        // Escaping cannot blow the bound up either.
        let q = quote(&"\u{1b}".repeat(1000));
        assert!(q.chars().count() < 260, "{q}");
        assert!(q.contains("truncated"), "{q}");
    }

    #[test]
    fn control_characters_are_refused_but_line_breaks_in_free_text() {
        assert!(check_no_control("summary", "line 1\nline 2\ttab\r\n", true).is_ok());
        assert!(check_no_control("name", "Dana\nKim", false).is_err());
        for bad in ["a\0b", "\u{1b}[2J", "\u{7f}", "\u{85}", "\u{8}"] {
            assert!(check_no_control("summary", bad, true).is_err(), "{bad:?}");
            assert!(check_no_control("name", bad, false).is_err(), "{bad:?}");
        }
        assert!(check_no_control("name", "Zoë Ørsted – 東京", false).is_ok());
    }
}
