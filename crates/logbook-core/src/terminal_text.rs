//! Terminal-safe text: event fields are producer-controlled, so before the CLI prints them every
//! character a terminal would obey instead of show (escape sequences, carriage returns that
//! overwrite a line, bidi controls that reorder it, zero-width characters that hide text) is
//! replaced by a visible escape.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Returns `text` with every control, bidi-control and zero-width character replaced by a
/// visible escape: `\n`, `\r`, `\t`, `\e` (ESC), otherwise `\u{XXXX}`. A backslash stays as it
/// is, so the output is meant for eyes, not for parsing back. Borrows when nothing changes.
pub fn escape_for_terminal(text: &str) -> Cow<'_, str> {
    let Some(first_unsafe) = text.find(must_be_escaped) else {
        return Cow::Borrowed(text);
    };
    let mut escaped = String::with_capacity(text.len() + 16);
    escaped.push_str(&text[..first_unsafe]);
    let mut previous = text[..first_unsafe].chars().next_back();
    let mut rest = text[first_unsafe..].chars().peekable();
    while let Some(character) = rest.next() {
        let next = rest.peek().copied();
        let shown_as_is =
            !must_be_escaped(character) || is_joiner_inside_a_word(character, previous, next);
        previous = Some(character);
        if shown_as_is {
            escaped.push(character);
            continue;
        }
        match character {
            '\n' => escaped.push_str("\\n"),
            '\r' => escaped.push_str("\\r"),
            '\t' => escaped.push_str("\\t"),
            '\u{1b}' => escaped.push_str("\\e"),
            other => {
                write!(escaped, "\\u{{{:04X}}}", u32::from(other))
                    .expect("writing to a String cannot fail");
            }
        }
    }
    Cow::Owned(escaped)
}

/// Whether a terminal could act on `character` rather than display it.
/// A zero-width joiner or non-joiner between two visible non-ASCII characters is how emoji
/// sequences (a family, a flag) and scripts such as Devanagari and Persian are written: shown as
/// an escape it would break them, and it cannot disguise ASCII text. Anywhere else it is escaped.
fn is_joiner_inside_a_word(character: char, previous: Option<char>, next: Option<char>) -> bool {
    let visible_non_ascii =
        |neighbour: Option<char>| neighbour.is_some_and(|c| !c.is_ascii() && !must_be_escaped(c));
    matches!(character, '\u{200c}' | '\u{200d}')
        && visible_non_ascii(previous)
        && visible_non_ascii(next)
}

/// Whether `character` could mislead a reader instead of being read: a control, a bidi control,
/// a zero-width or invisible character, a line or paragraph separator. The one list every place
/// that shows event text escapes (the CLI, the page, the event view's copied JSON).
pub fn must_be_escaped(character: char) -> bool {
    matches!(
        character,
        // C0 controls (including ESC, CR, LF, TAB), DEL and the C1 controls.
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        // Bidi controls, which reorder what follows them on the line.
        | '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        // Zero-width characters, which hide text in plain sight.
        | '\u{200b}'..='\u{200d}' | '\u{2060}'..='\u{2064}' | '\u{feff}'
        // Line and paragraph separators, which some terminals and pagers treat as line breaks.
        | '\u{2028}' | '\u{2029}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        let text = "Rebooted server web-1 (café, 東京) C:\\path";
        assert!(matches!(escape_for_terminal(text), Cow::Borrowed(same) if same == text));
    }

    #[test]
    fn an_escape_sequence_is_shown_not_obeyed() {
        assert_eq!(
            escape_for_terminal("\u{1b}[31mred\u{1b}[0m"),
            "\\e[31mred\\e[0m"
        );
    }

    #[test]
    fn line_breaks_and_tabs_become_visible_escapes() {
        assert_eq!(escape_for_terminal("a\nb\rc\td"), "a\\nb\\rc\\td");
    }

    #[test]
    fn other_controls_del_and_c1_controls_become_code_point_escapes() {
        assert_eq!(
            escape_for_terminal("\u{0}\u{7}\u{7f}\u{85}\u{9b}"),
            "\\u{0000}\\u{0007}\\u{007F}\\u{0085}\\u{009B}"
        );
    }

    #[test]
    fn invisible_operators_are_shown_so_they_cannot_hide_between_letters() {
        assert_eq!(
            escape_for_terminal("pay\u{2061}pal\u{2064}"),
            "pay\\u{2061}pal\\u{2064}"
        );
    }

    #[test]
    fn bidi_controls_are_shown_so_they_cannot_reorder_the_line() {
        assert_eq!(
            escape_for_terminal("file\u{202e}gpj.exe"),
            "file\\u{202E}gpj.exe"
        );
        assert_eq!(
            escape_for_terminal("\u{61c}\u{200e}\u{200f}\u{2066}\u{2069}"),
            "\\u{061C}\\u{200E}\\u{200F}\\u{2066}\\u{2069}"
        );
    }

    #[test]
    fn zero_width_characters_are_shown() {
        assert_eq!(
            escape_for_terminal("ad\u{200b}min\u{feff}\u{2060}"),
            "ad\\u{200B}min\\u{FEFF}\\u{2060}"
        );
    }

    #[test]
    fn joiners_inside_emoji_and_scripts_are_kept_and_joiners_between_ascii_letters_are_shown() {
        let family = "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}";
        assert_eq!(escape_for_terminal(family), family);
        let persian = "\u{0645}\u{06CC}\u{200C}\u{062E}\u{0648}\u{0627}\u{0647}\u{0645}";
        assert_eq!(escape_for_terminal(persian), persian);
        assert_eq!(escape_for_terminal("pay\u{200D}pal"), "pay\\u{200D}pal");
        assert_eq!(
            escape_for_terminal("\u{200D}\u{1F467}"),
            "\\u{200D}\u{1F467}"
        );
        // A joiner next to another hidden character is shown, and so is that character.
        assert_eq!(
            escape_for_terminal("\u{1F468}\u{200D}\u{202E}"),
            "\u{1F468}\\u{200D}\\u{202E}"
        );
    }

    #[test]
    fn a_backslash_is_left_as_it_is() {
        assert_eq!(escape_for_terminal("C:\\temp\\n"), "C:\\temp\\n");
    }

    proptest! {
        #[test]
        fn escaped_text_never_holds_a_character_a_terminal_would_obey(text in any::<String>()) {
            let escaped = escape_for_terminal(&text);
            prop_assert!(!escaped.chars().any(must_be_escaped));
        }

        #[test]
        fn text_without_unsafe_characters_comes_back_borrowed_and_equal(text in "[a-zA-Z0-9 .,:;!?é東\\\\-]{0,40}") {
            prop_assert!(matches!(escape_for_terminal(&text), Cow::Borrowed(same) if same == text));
        }
    }
}
