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

/// The bounds the component checks a stored hash within (the WIT contract says them): what one
/// login may spend, whatever a row says.
pub const MAX_ARGON2_MEMORY_KIB: u64 = 256 * 1024;
pub const MAX_ARGON2_PASSES: u64 = 10;
pub const MAX_ARGON2_LANES: u64 = 16;
pub const MAX_BCRYPT_COST: u64 = 16;
pub const MAX_PBKDF2_ROUNDS: u64 = 10_000_000;
/// The bytes of a password bcrypt reads; the rest is ignored.
const BCRYPT_MAX_BYTES: usize = 72;

/// A character of the crypt base64 alphabet bcrypt and passlib use (`./A-Za-z0-9`).
fn is_crypt64(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'.' || byte == b'/'
}

/// A stored password hash's format and cost, read from its header (nothing is checked against
/// a password here: the component does that).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashFormat {
    /// `argon2id`, `argon2i` or `argon2d`, with memory (KiB), passes and lanes.
    Argon2 { variant: String, memory_kib: u64, passes: u64, lanes: u64 },
    /// `$2a$`, `$2b$` or `$2y$`, with its cost.
    Bcrypt { prefix: String, cost: u64 },
    /// passlib's `$pbkdf2-sha256$`, with its rounds.
    Pbkdf2Sha256 { rounds: u64 },
}

impl HashFormat {
    /// The format of `hash`, or why the component would not check it: unknown (or plain text),
    /// malformed, or dearer than one login may spend.
    pub fn of(hash: &str) -> Result<Self, String> {
        let format = Self::parse(hash).map_err(|malformed| match malformed {
            None => "an unknown or plain-text password hash format".to_owned(),
            Some(format) => format!("a malformed {format} hash"),
        })?;
        format.within_bounds()?;
        Ok(format)
    }

    /// Reads the header and checks the whole string is well formed (what the component's
    /// parsers require): `Err(None)` for an unknown format, `Err(Some(format))` for a
    /// malformed one.
    fn parse(hash: &str) -> Result<Self, Option<&'static str>> {
        let mut parts = hash.split('$');
        if parts.next() != Some("") {
            return Err(None);
        }
        let id = parts.next().ok_or(None)?;
        if matches!(id, "argon2id" | "argon2i" | "argon2d") {
            return Self::parse_argon2(id, parts).ok_or(Some("argon2"));
        }
        if matches!(id, "2a" | "2b" | "2y") {
            let cost = parts.next().filter(|cost| cost.len() == 2).and_then(|cost| cost.parse().ok());
            let rest = parts.next().unwrap_or_default();
            let well_formed =
                hash.len() == 60 && rest.len() == 53 && rest.bytes().all(is_crypt64) && parts.next().is_none();
            return cost
                .filter(|_| well_formed)
                .map(|cost| Self::Bcrypt { prefix: format!("${id}$"), cost })
                .ok_or(Some("bcrypt"));
        }
        if id == "pbkdf2-sha256" {
            let rounds = parts.next().filter(|r| !r.starts_with('0')).and_then(|rounds| rounds.parse().ok());
            let (salt, checksum) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
            let well_formed = !salt.is_empty()
                && salt.len() <= 128
                && salt.bytes().all(is_crypt64)
                && checksum.len() == 43
                && checksum.bytes().all(is_crypt64)
                && parts.next().is_none();
            return rounds.filter(|_| well_formed).map(|rounds| Self::Pbkdf2Sha256 { rounds }).ok_or(Some("PBKDF2"));
        }
        Err(None)
    }

    /// An argon2 PHC string's parameters, when it is one the argon2 crate reads: version 16
    /// or 19, exactly `m`, `t` and `p` (t ≥ 1, p ≥ 1, m ≥ 8p), a salt of 8 to 48 bytes and an
    /// output of 4 to 64 bytes, in unpadded base64.
    fn parse_argon2<'a>(variant: &str, mut parts: impl Iterator<Item = &'a str>) -> Option<Self> {
        let mut params = parts.next()?;
        if let Some(version) = params.strip_prefix("v=") {
            if !matches!(version, "16" | "19") {
                return None;
            }
            params = parts.next()?;
        }
        let (mut memory_kib, mut passes, mut lanes) = (None, None, None);
        for pair in params.split(',') {
            let (name, value) = pair.split_once('=')?;
            let value = Some(value).filter(|v| !v.starts_with('0') || *v == "0")?.parse::<u64>().ok()?;
            let slot = match name {
                "m" => &mut memory_kib,
                "t" => &mut passes,
                "p" => &mut lanes,
                _ => return None,
            };
            if slot.replace(value).is_some() {
                return None;
            }
        }
        let (memory_kib, passes, lanes) = (memory_kib?, passes?, lanes?);
        let (salt, output) = (parts.next()?, parts.next()?);
        let base64 = |text: &str, bytes: std::ops::RangeInclusive<usize>| {
            text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
                && text.len() % 4 != 1
                && bytes.contains(&(text.len() * 3 / 4))
        };
        let well_formed = passes >= 1
            && lanes >= 1
            && memory_kib >= 8 * lanes
            && base64(salt, 8..=48)
            && base64(output, 4..=64)
            && parts.next().is_none();
        well_formed.then(|| Self::Argon2 { variant: variant.to_owned(), memory_kib, passes, lanes })
    }

    fn within_bounds(&self) -> Result<(), String> {
        match self {
            Self::Argon2 { memory_kib, passes, lanes, .. }
                if *memory_kib > MAX_ARGON2_MEMORY_KIB || *passes > MAX_ARGON2_PASSES || *lanes > MAX_ARGON2_LANES =>
            {
                return Err(format!(
                    "an argon2 hash dearer than a login may spend (at most {} MiB, {MAX_ARGON2_PASSES} passes, \
                     {MAX_ARGON2_LANES} lanes)",
                    MAX_ARGON2_MEMORY_KIB / 1024
                ));
            }
            Self::Bcrypt { cost, .. } if !(4..=MAX_BCRYPT_COST).contains(cost) => {
                return Err(format!("a bcrypt hash of cost {cost} (from 4 to {MAX_BCRYPT_COST} are checked)"));
            }
            Self::Pbkdf2Sha256 { rounds } if !(1..=MAX_PBKDF2_ROUNDS).contains(rounds) => {
                return Err(format!("a PBKDF2 hash of {rounds} rounds (at most {MAX_PBKDF2_ROUNDS} are checked)"));
            }
            _ => {}
        }
        Ok(())
    }

    /// What checking it costs, in the argon2 unit (memory KiB times passes); `None` for other
    /// algorithms, whose cost does not compare.
    pub fn argon2_cost(&self) -> Option<u64> {
        match self {
            Self::Argon2 { memory_kib, passes, .. } => memory_kib.checked_mul(*passes),
            _ => None,
        }
    }

    /// The memory checking it takes, in bytes; `None` for algorithms that take next to none.
    pub fn memory_bytes(&self) -> Option<u64> {
        match self {
            Self::Argon2 { memory_kib, .. } => memory_kib.checked_mul(1024),
            _ => None,
        }
    }

    /// The algorithm family: within one, [`HashFormat::rank`] orders what a check costs.
    pub fn family(&self) -> &'static str {
        match self {
            Self::Argon2 { .. } => "argon2",
            Self::Bcrypt { .. } => "bcrypt",
            Self::Pbkdf2Sha256 { .. } => "pbkdf2-sha256",
        }
    }

    /// Where a check of it stands in its family's costs: a higher rank costs at least as much
    /// (argon2: memory times passes, then memory; bcrypt: the cost; PBKDF2: the rounds).
    pub fn rank(&self) -> (u64, u64) {
        match self {
            Self::Argon2 { memory_kib, passes, .. } => (memory_kib.saturating_mul(*passes), *memory_kib),
            Self::Bcrypt { cost, .. } => (*cost, 0),
            Self::Pbkdf2Sha256 { rounds } => (*rounds, 0),
        }
    }

    /// Whether a match of `password` against a hash of this format proves it is the password
    /// that was hashed. bcrypt reads only the first 72 bytes, and stops at a NUL byte: a longer
    /// password matches by its beginning, so another password of that beginning would too.
    pub fn distinguishes(&self, password: &[u8]) -> bool {
        match self {
            Self::Bcrypt { .. } => password.len() < BCRYPT_MAX_BYTES && !password.contains(&0),
            Self::Argon2 { .. } | Self::Pbkdf2Sha256 { .. } => true,
        }
    }

    /// A short description for reports: `argon2id m=19456,t=2,p=1`, `bcrypt cost 12`, ...
    pub fn describe(&self) -> String {
        match self {
            Self::Argon2 { variant, memory_kib, passes, lanes } => {
                format!("{variant} m={memory_kib},t={passes},p={lanes}")
            }
            Self::Bcrypt { prefix, cost } => format!("bcrypt {prefix} cost {cost}"),
            Self::Pbkdf2Sha256 { rounds } => format!("pbkdf2-sha256 {rounds} rounds"),
        }
    }
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
    fn stored_hash_formats_are_read_and_bounded() {
        let argon = HashFormat::of("$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaA").unwrap();
        assert_eq!(argon.argon2_cost(), Some(196_608));
        assert_eq!(argon.describe(), "argon2id m=65536,t=3,p=4");
        let bcrypt = HashFormat::of("$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW").unwrap();
        assert_eq!(bcrypt, HashFormat::Bcrypt { prefix: "$2b$".into(), cost: 12 });
        let passlib = "$pbkdf2-sha256$29000$N2YMIWQsBWBMae09x1jrPQ$1t8iyB2A.WF/Z5JZv.lfCIhXXN33N23OSgQYThBYRfk";
        assert_eq!(HashFormat::of(passlib).unwrap(), HashFormat::Pbkdf2Sha256 { rounds: 29_000 });
        for (hash, why) in [
            ("hunter2", "unknown"),
            ("$scrypt$ln=15,r=8,p=1$c2FsdA$aGFzaA", "unknown"),
            ("$argon2id$v=19$m=300000,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA", "dearer"),
            ("$argon2id$v=19$m=19456,t=11,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA", "dearer"),
            ("$2b$17$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW", "cost 17"),
            // Malformed: what the component's parsers would refuse at every login.
            ("$2b$12$short", "malformed bcrypt"),
            ("$2b$04$!!!!/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW", "malformed bcrypt"),
            ("$2b$4$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUWx", "malformed bcrypt"),
            (
                "$pbkdf2-sha256$29000$N2YM!WQsBWBMae09x1jrPQ$1t8iyB2A.WF/Z5JZv.lfCIhXXN33N23OSgQYThBYRfk",
                "malformed PBKDF2",
            ),
            ("$pbkdf2-sha256$29000$N2YMIWQsBWBMae09x1jrPQ$1t8iyB2A", "malformed PBKDF2"),
            ("$argon2id$v=19$m=19456,t=0,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA", "malformed argon2"),
            ("$argon2id$v=19$m=19456,t=2,p=0$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA", "malformed argon2"),
            ("$argon2id$v=19$m=8,t=2,p=16$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA", "malformed argon2"),
            ("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaGhhc2hoYXNoaGFzaA", "malformed argon2"),
            ("$argon2id$v=19$m=19456,t=2,p=1$c2Fsd!NhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA", "malformed argon2"),
            ("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFz", "malformed argon2"),
            ("$argon2id$v=18$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA", "malformed argon2"),
            ("$argon2id$v=19$m=19456,t=2,t=3,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA", "malformed argon2"),
            ("$pbkdf2-sha256$10000001$N2YMIWQsBWBMae09x1jrPQ$1t8iyB2A.WF/Z5JZv.lfCIhXXN33N23OSgQYThBYRfk", "rounds"),
        ] {
            let refused = HashFormat::of(hash).unwrap_err();
            assert!(refused.contains(why), "{hash}: {refused}");
        }
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
