//! Password policy: the one spelling a password is hashed in, the spellings a login is
//! checked in, and what a new password must be.
//!
//! Normalisation follows RFC 8265's OpaqueString profile, which NIST SP 800-63B §5.1.1.2
//! points to: non-ASCII spaces become U+0020, then Unicode NFC. The same characters typed
//! on a keyboard that sends them decomposed (macOS, some browsers) are then the same
//! password. Accounts whose hash was made from another spelling (before normalisation, or
//! by a client that decomposes) keep logging in: a login is checked in the normalised
//! spelling, then as sent, then decomposed, and a match in any but the first re-hashes
//! the normalised one.

use secrecy::{ExposeSecret, SecretString};
use unicode_normalization::UnicodeNormalization;
use zxcvbn::matching::patterns::MatchPattern;

/// Shortest password accepted at registration or change, in characters.
pub const MIN_CHARS: usize = 8;
/// Longest password accepted anywhere, in bytes (as sent and normalised); checked before any hashing.
pub const MAX_BYTES: usize = 1024;
/// Passwords longer than this are in no list of common ones worth checking
/// (and zxcvbn's work grows with the length).
const COMMON_CHECK_MAX_CHARS: usize = 64;

/// Why a password is not acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("password must be at most {MAX_BYTES} bytes")]
    TooLong,
    #[error("password must be at least {MIN_CHARS} characters")]
    TooShort,
    #[error("password is one of the most commonly used passwords, which attackers try first; choose another")]
    Common,
}

/// `password` in its one spelling: non-ASCII spaces as U+0020, then NFC.
pub fn normalize(password: &SecretString) -> SecretString {
    let text = password.expose_secret();
    if text.is_ascii() {
        return password.clone();
    }
    let spaced: String = text.chars().map(|c| if is_non_ascii_space(c) { ' ' } else { c }).collect();
    SecretString::from(spaced.nfc().collect::<String>())
}

/// The spellings a login's password is checked in, in order, without repeats: normalised,
/// as sent, decomposed (NFD). One for any ASCII password; never more than three. The count
/// depends on the password alone, so checking every spelling of a wrong password costs the
/// same whether or not the account exists.
pub fn spellings(sent: &SecretString) -> Result<Vec<SecretString>, Refusal> {
    let mut spellings = vec![normalize(sent)];
    let decomposed = SecretString::from(sent.expose_secret().nfd().collect::<String>());
    for other in [sent.clone(), decomposed] {
        if spellings.iter().all(|s| s.expose_secret() != other.expose_secret()) {
            spellings.push(other);
        }
    }
    if spellings.iter().any(|s| s.expose_secret().len() > MAX_BYTES) {
        return Err(Refusal::TooLong);
    }
    Ok(spellings)
}

/// A new password (registration, change), normalised, or why it is not acceptable.
pub fn new_password(sent: &SecretString) -> Result<SecretString, Refusal> {
    if sent.expose_secret().len() > MAX_BYTES {
        return Err(Refusal::TooLong);
    }
    let password = normalize(sent);
    let text = password.expose_secret();
    if text.len() > MAX_BYTES {
        return Err(Refusal::TooLong);
    }
    if text.chars().count() < MIN_CHARS {
        return Err(Refusal::TooShort);
    }
    if is_common(text) {
        return Err(Refusal::Common);
    }
    Ok(password)
}

/// Unicode's space separators (general category Zs) other than U+0020.
fn is_non_ascii_space(c: char) -> bool {
    matches!(c, '\u{a0}' | '\u{1680}' | '\u{2000}'..='\u{200a}' | '\u{202f}' | '\u{205f}' | '\u{3000}')
}

/// Whether `password` is a known-common one (NIST SP 800-63B §5.1.1.2): the
/// whole of it is an entry of zxcvbn's bundled list of the most used passwords
/// (also reversed or in l33t spelling), or it is guessable in under a thousand
/// tries. No network call.
fn is_common(password: &str) -> bool {
    if password.chars().count() > COMMON_CHECK_MAX_CHARS {
        return false;
    }
    let estimate = zxcvbn::zxcvbn(password, &[]);
    // zxcvbn keeps its `DictionaryType` private; its default variant is the passwords list.
    let whole_listed = matches!(
        estimate.sequence(),
        [only] if matches!(&only.pattern, MatchPattern::Dictionary(d) if d.dictionary_name == Default::default())
    );
    whole_listed || estimate.score() == zxcvbn::Score::Zero
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(spellings: &[SecretString]) -> Vec<&str> {
        spellings.iter().map(|s| s.expose_secret()).collect()
    }

    const COMPOSED: &str = "Ma\u{f1}ana-Br\u{fc}cke-42";
    const DECOMPOSED: &str = "Man\u{303}ana-Bru\u{308}cke-42";

    #[test]
    fn one_spelling_for_the_same_characters() {
        assert_eq!(normalize(&DECOMPOSED.into()).expose_secret(), COMPOSED);
        assert_eq!(normalize(&COMPOSED.into()).expose_secret(), COMPOSED);
        assert_eq!(normalize(&"a\u{a0}b\u{3000}c\u{2009}d e\tf".into()).expose_secret(), "a b c d e\tf");
        // Compatibility characters are other passwords (NFC, not NFKC).
        assert_eq!(normalize(&"\u{ff41}bc\u{2460}".into()).expose_secret(), "\u{ff41}bc\u{2460}");
    }

    #[test]
    fn a_login_is_checked_normalised_then_as_sent_then_decomposed() {
        assert_eq!(texts(&spellings(&"plain ascii".into()).unwrap()), ["plain ascii"]);
        assert_eq!(texts(&spellings(&COMPOSED.into()).unwrap()), [COMPOSED, DECOMPOSED]);
        assert_eq!(texts(&spellings(&DECOMPOSED.into()).unwrap()), [COMPOSED, DECOMPOSED]);
        let spaced = "Ma\u{f1}ana\u{a0}42";
        assert_eq!(texts(&spellings(&spaced.into()).unwrap()), ["Ma\u{f1}ana 42", spaced, "Man\u{303}ana\u{a0}42"]);
        assert_eq!(spellings(&"x".repeat(MAX_BYTES + 1).into()).unwrap_err(), Refusal::TooLong);
    }

    #[test]
    fn new_passwords_are_normalised_and_checked() {
        assert_eq!(new_password(&DECOMPOSED.into()).unwrap().expose_secret(), COMPOSED);
        assert_eq!(new_password(&"short".into()).unwrap_err(), Refusal::TooShort);
        // Eight characters once composed, although more code points as sent.
        assert_eq!(new_password(&"n\u{303}n\u{303}n\u{303}".into()).unwrap_err(), Refusal::TooShort);
        assert_eq!(new_password(&"x".repeat(MAX_BYTES + 1).into()).unwrap_err(), Refusal::TooLong);
        assert_eq!(new_password(&"password1".into()).unwrap_err(), Refusal::Common);
    }

    #[test]
    fn the_most_used_passwords_are_common_and_passphrases_are_not() {
        for common in ["password", "password1", "12345678", "qwertyuiop", "iloveyou", "drowssap", "p@ssw0rd"] {
            assert!(is_common(common), "{common}");
        }
        for fine in ["correct horse battery staple", "loom-auth is pleasant 2026", "Zq8!vR3#kP"] {
            assert!(!is_common(fine), "{fine}");
        }
    }
}
