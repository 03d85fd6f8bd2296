//! Email addresses: one spelling per address, decided before anything else.
//!
//! An address is normalised to Unicode NFKC (so a look-alike such as U+212A
//! KELVIN SIGN becomes the plain letter it stands for) with its domain in
//! ASCII (IDNA, lower case); that is what is stored and shown. Its unique key
//! is the normalised address fully case-folded (`ß` and `ss` are one key), so
//! two spellings of one address can never be two accounts.

use email_address::{EmailAddress, Options};
use unicode_normalization::UnicodeNormalization;

/// The normalised address, or why it is not a valid one.
pub fn normalize(email: &str) -> Result<String, String> {
    let composed: String = email.nfkc().collect();
    if let Some(hidden) = composed.chars().find(|c| is_invisible(*c)) {
        return Err(format!("it contains an invisible or control character (U+{:04X})", u32::from(hidden)));
    }
    let (local, domain) = composed.rsplit_once('@').ok_or("it has no @")?;
    let domain = idna::domain_to_ascii(domain).map_err(|_| format!("{domain:?} is not a valid domain name"))?;
    let normalized = format!("{local}@{domain}");
    let options = Options::default().with_required_tld().without_display_text().without_domain_literal();
    EmailAddress::parse_with_options(&normalized, options).map_err(|e| e.to_string())?;
    Ok(normalized)
}

/// Characters that show nothing, or change how the rest shows, so that an address holding
/// one looks like another (PRECIS, RFC 8264 §9.13-9.14; UTS #39): Unicode's
/// Default_Ignorable_Code_Point (zero-width spaces and joiners, the soft hyphen, word
/// joiners, variation selectors, tags), the bidirectional controls, the other format
/// characters that can stand in an address, controls, and the line and paragraph separators.
fn is_invisible(c: char) -> bool {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    // Controls, format characters, separators other than spaces, surrogates, private use and
    // unassigned code points: none belongs in an address.
    let category = matches!(
        c.general_category(),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
            | GeneralCategory::Surrogate
            | GeneralCategory::PrivateUse
            | GeneralCategory::Unassigned
    );
    // And what has a category of its own but draws nothing: default-ignorable marks and
    // fillers, and symbols that render blank (U+2800 BRAILLE PATTERN BLANK, U+1D159 MUSICAL
    // SYMBOL NULL NOTEHEAD).
    category
        || matches!(
            u32::from(c),
            0x2800 | 0x1D159 |
        0x0000..=0x001F
            | 0x007F..=0x009F
            | 0x00AD
            | 0x034F
            | 0x0600..=0x0605
            | 0x061C
            | 0x06DD
            | 0x070F
            | 0x08E2
            | 0x115F..=0x1160
            | 0x17B4..=0x17B5
            | 0x180B..=0x180F
            | 0x200B..=0x200F
            | 0x2028..=0x202E
            | 0x2060..=0x206F
            | 0x3164
            | 0xFE00..=0xFE0F
            | 0xFEFF
            | 0xFFA0
            | 0xFFF0..=0xFFFB
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0000..=0xE0FFF
        )
}

/// The key that makes addresses unique: the normalised address, fully case-folded.
/// An input that does not normalise (it names no account anyway) is folded as given.
pub fn key(email: &str) -> String {
    let normalized = normalize(email).unwrap_or_else(|_| email.nfkc().collect());
    caseless::default_case_fold_str(&normalized)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn look_alikes_and_case_variants_share_one_spelling_and_key() {
        let kelvin_sign = "\u{212A}elvin@example.com";
        assert_eq!(normalize(kelvin_sign).unwrap(), "Kelvin@example.com");
        assert_eq!(key(kelvin_sign), "kelvin@example.com");
        assert_eq!(key("KELVIN@Example.COM"), "kelvin@example.com");
        assert_eq!(key("strasse@example.com"), key("STRAẞE@example.com"));
        assert_eq!(normalize("ada@Bücher.example").unwrap(), "ada@xn--bcher-kva.example");
        assert_eq!(key("ada@bücher.example"), key("ADA@xn--bcher-kva.example"));
        // Fullwidth letters are their ASCII selves.
        assert_eq!(normalize("ａｄａ@example.com").unwrap(), "ada@example.com");
    }

    #[test]
    fn invisible_characters_make_no_second_address() {
        for hidden in [
            "dave\u{200b}@example.com",
            "dave\u{2060}@example.com",
            "da\u{ad}ve@example.com",
            "\u{202e}dave@example.com",
            "dave\u{2066}@example.com",
            "dave@exa\u{200d}mple.com",
            "dave\u{fe0f}@example.com",
            "dave\u{e0041}@example.com",
            "dave\u{3164}@example.com",
            "dave\u{feff}@example.com",
            "j\u{2800}x@example.com",
            "dave@exa\u{2800}mple.com",
            "j\u{1d159}x@example.com",
            "j\u{13430}x@example.com",
            "j\u{110bd}x@example.com",
            "j\u{890}x@example.com",
            "j\u{e000}x@example.com",
        ] {
            let refused = normalize(hidden).unwrap_err();
            assert!(refused.contains("invisible"), "{hidden:?}: {refused}");
        }
        assert_eq!(normalize("dave@example.com").unwrap(), "dave@example.com");
    }

    #[test]
    fn invalid_addresses_are_refused_with_a_reason() {
        for bad in ["no-at-sign", "ada@", "ada@localhost", "@example.com", "ada@exa mple.com"] {
            assert!(normalize(bad).is_err(), "{bad:?}");
        }
    }
}
