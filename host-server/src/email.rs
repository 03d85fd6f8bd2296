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
    let (local, domain) = composed.rsplit_once('@').ok_or("it has no @")?;
    let domain = idna::domain_to_ascii(domain).map_err(|_| format!("{domain:?} is not a valid domain name"))?;
    let normalized = format!("{local}@{domain}");
    let options = Options::default().with_required_tld().without_display_text().without_domain_literal();
    EmailAddress::parse_with_options(&normalized, options).map_err(|e| e.to_string())?;
    Ok(normalized)
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
    fn invalid_addresses_are_refused_with_a_reason() {
        for bad in ["no-at-sign", "ada@", "ada@localhost", "@example.com", "ada@exa mple.com"] {
            assert!(normalize(bad).is_err(), "{bad:?}");
        }
    }
}
