//! Passwords as the server compares them: one spelling for the same characters.
//!
//! RFC 8265's OpaqueString profile, which NIST SP 800-63B §5.1.1.2 points to: every
//! non-ASCII space becomes U+0020, then Unicode NFC. A password typed on a keyboard that
//! sends decomposed characters (macOS, some browsers) is then the same password as one
//! typed composed. The server normalises too; loom does it first so that what it sends
//! is the same whatever produced it.

use secrecy::{ExposeSecret, SecretString};
use unicode_normalization::UnicodeNormalization;

/// `password` in its one spelling.
pub fn normalize(password: &SecretString) -> SecretString {
    let text = password.expose_secret();
    if text.is_ascii() {
        return password.clone();
    }
    let spaced: String = text.chars().map(|c| if is_non_ascii_space(c) { ' ' } else { c }).collect();
    SecretString::from(spaced.nfc().collect::<String>())
}

/// Unicode's space separators (general category Zs) other than U+0020.
fn is_non_ascii_space(c: char) -> bool {
    matches!(c, '\u{a0}' | '\u{1680}' | '\u{2000}'..='\u{200a}' | '\u{202f}' | '\u{205f}' | '\u{3000}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composed_and_decomposed_spellings_are_one_password() {
        let composed = SecretString::from("Ma\u{f1}ana-Br\u{fc}cke-42");
        let decomposed = SecretString::from("Man\u{303}ana-Bru\u{308}cke-42");
        assert_eq!(normalize(&decomposed).expose_secret(), composed.expose_secret());
        assert_eq!(normalize(&composed).expose_secret(), composed.expose_secret());
        // Non-ASCII spaces are spaces; ASCII ones and everything else stay.
        assert_eq!(normalize(&SecretString::from("a\u{a0}b\u{3000}c d\te")).expose_secret(), "a b c d\te");
        // Compatibility characters are not folded (NFC, not NFKC): they are other passwords.
        assert_eq!(normalize(&SecretString::from("\u{ff41}bc\u{2460}")).expose_secret(), "\u{ff41}bc\u{2460}");
    }
}
