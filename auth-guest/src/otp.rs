//! Second factors: RFC 6238 time-based one-time passwords (what every authenticator app reads
//! from an `otpauth://` URI: HMAC-SHA1, 6 digits, 30-second steps) and recovery codes.
//!
//! Stateless like the rest of the component: the host passes the secret, the time and the
//! last step it accepted, and keeps what [`check`] answers (the step that matched) so a code
//! is good once. Recovery codes are made here and kept by the host only as argon2id hashes.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use hmac::{Hmac, Mac};
use subtle::ConstantTimeEq;

/// A new secret's length: 160 bits, RFC 4226's recommendation and SHA-1's block output.
pub const SECRET_BYTES: usize = 20;
/// Seconds per step (RFC 6238's default, which authenticator apps assume).
pub const STEP_SECONDS: u64 = 30;
/// Digits per code.
pub const DIGITS: u32 = 6;
/// Steps accepted either side of the current one: a clock a few seconds off, or a code typed
/// as its step ended.
pub const WINDOW: u64 = 1;
/// How many recovery codes a person is given.
pub const RECOVERY_CODES: usize = 10;
/// The characters of a recovery code: Crockford's base32 alphabet (no i, l, o, u), lower case.
const RECOVERY_ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
/// Characters per recovery code (two groups of five: 50 bits).
const RECOVERY_CHARS: usize = 10;
/// Argon2id for recovery codes: 50 random bits need no password's cost, and a login may check a
/// code against ten hashes. 4 MiB and one pass (about a millisecond natively) still make each
/// offline guess at a 2^50 space dear.
const RECOVERY_MEMORY_KIB: u32 = 4096;
const RECOVERY_PASSES: u32 = 1;

/// Why a second factor could not be made or checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OtpError {
    #[error("the secret is not one this component makes (at least 16 bytes, at most 64)")]
    InvalidSecret,
    #[error("no randomness, or another failure inside the component")]
    Internal,
}

/// A fresh secret of [`SECRET_BYTES`] random bytes.
pub fn new_secret() -> Result<Vec<u8>, OtpError> {
    let mut secret = vec![0u8; SECRET_BYTES];
    getrandom::fill(&mut secret).map_err(|_| OtpError::Internal)?;
    Ok(secret)
}

/// RFC 4648 base32 without padding, upper case: how `otpauth://` URIs carry the secret.
pub fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    for chunk in bytes.chunks(5) {
        let mut block = [0u8; 5];
        block[..chunk.len()].copy_from_slice(chunk);
        let bits = block.iter().fold(0u64, |acc, byte| (acc << 8) | u64::from(*byte));
        let chars = (chunk.len() * 8).div_ceil(5);
        for i in 0..chars {
            out.push(char::from(ALPHABET[((bits >> (35 - 5 * i)) & 31) as usize]));
        }
    }
    out
}

/// The `otpauth://totp/...` URI an authenticator app reads (Google's Key Uri Format): the label
/// `issuer:account`, the secret, and the issuer again as a parameter.
pub fn otpauth_uri(secret: &[u8], issuer: &str, account: &str) -> String {
    let label = format!("{}:{}", encode(issuer), encode(account));
    format!(
        "otpauth://totp/{label}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
        base32(secret),
        encode(issuer)
    )
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn check_secret(secret: &[u8]) -> Result<(), OtpError> {
    if (16..=64).contains(&secret.len()) { Ok(()) } else { Err(OtpError::InvalidSecret) }
}

/// The step `unix_seconds` falls in.
pub fn step_at(unix_seconds: u64) -> u64 {
    unix_seconds / STEP_SECONDS
}

/// RFC 4226's HOTP value of `secret` at `counter`, as [`DIGITS`] digits.
pub fn code_at_step(secret: &[u8], counter: u64) -> Result<String, OtpError> {
    check_secret(secret)?;
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret).map_err(|_| OtpError::InvalidSecret)?;
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    // Dynamic truncation (RFC 4226 §5.3).
    let offset = usize::from(digest[19] & 0x0f);
    let value = u32::from_be_bytes([digest[offset] & 0x7f, digest[offset + 1], digest[offset + 2], digest[offset + 3]]);
    Ok(format!("{:0width$}", value % 10u32.pow(DIGITS), width = DIGITS as usize))
}

/// Checks `code` against `secret` at `unix_seconds`, accepting [`WINDOW`] steps either side,
/// but only steps after `last_used` (the one the host accepted last): the step that matched, or
/// `None`. Every candidate is computed and compared in constant time, so timing tells nothing.
/// Spaces in the code (`123 456`, as some apps show it) are ignored.
pub fn check(secret: &[u8], code: &str, unix_seconds: u64, last_used: Option<u64>) -> Result<Option<u64>, OtpError> {
    check_secret(secret)?;
    let typed: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let well_formed = typed.len() == DIGITS as usize && typed.bytes().all(|b| b.is_ascii_digit());
    let now = step_at(unix_seconds);
    let mut matched = None;
    for step in now.saturating_sub(WINDOW)..=now.saturating_add(WINDOW) {
        let expected = code_at_step(secret, step)?;
        let same: bool = expected.as_bytes().ct_eq(typed.as_bytes()).into();
        let fresh = last_used.is_none_or(|last| step > last);
        if same && fresh && well_formed && matched.is_none() {
            matched = Some(step);
        }
    }
    Ok(matched)
}

/// [`RECOVERY_CODES`] fresh recovery codes, `xxxxx-xxxxx` (50 random bits each).
pub fn new_recovery_codes() -> Result<Vec<String>, OtpError> {
    (0..RECOVERY_CODES).map(|_| new_recovery_code()).collect()
}

fn new_recovery_code() -> Result<String, OtpError> {
    let mut random = [0u8; RECOVERY_CHARS];
    getrandom::fill(&mut random).map_err(|_| OtpError::Internal)?;
    // 32 divides 256: taking five bits of each byte is uniform.
    let chars: String = random.iter().map(|b| char::from(RECOVERY_ALPHABET[usize::from(b & 31)])).collect();
    Ok(format!("{}-{}", &chars[..5], &chars[5..]))
}

/// A recovery code as typed, in its one spelling: case, spaces and dashes ignored, and the
/// letters people confuse with digits read as Crockford's base32 does (`o` → 0, `i`/`l` → 1).
/// `None` when it cannot be one.
pub fn normalize_recovery_code(typed: &str) -> Option<String> {
    let mut chars = String::with_capacity(RECOVERY_CHARS);
    for c in typed.chars().filter(|c| !c.is_whitespace() && *c != '-') {
        let c = match c.to_ascii_lowercase() {
            'o' => '0',
            'i' | 'l' => '1',
            other => other,
        };
        if !c.is_ascii() || !RECOVERY_ALPHABET.contains(&(c as u8)) || chars.len() == RECOVERY_CHARS {
            return None;
        }
        chars.push(c);
    }
    (chars.len() == RECOVERY_CHARS).then(|| format!("{}-{}", &chars[..5], &chars[5..]))
}

fn recovery_argon2() -> Argon2<'static> {
    let params = Params::new(RECOVERY_MEMORY_KIB, RECOVERY_PASSES, 1, None).expect("constant parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The argon2id PHC string the host keeps for a recovery code.
pub fn hash_recovery_code(code: &str) -> Result<String, OtpError> {
    let code = normalize_recovery_code(code).ok_or(OtpError::Internal)?;
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|_| OtpError::Internal)?;
    let salt = SaltString::encode_b64(&salt).map_err(|_| OtpError::Internal)?;
    recovery_argon2().hash_password(code.as_bytes(), &salt).map(|h| h.to_string()).map_err(|_| OtpError::Internal)
}

/// Which of `hashes` (the host's unused recovery codes) `typed` matches, if any. Every hash is
/// checked, matched or not, so the time says nothing about which or whether; hashes with other
/// parameters than this component makes are skipped (they cannot be its own).
pub fn match_recovery_code(typed: &str, hashes: &[String]) -> Option<u32> {
    let code = normalize_recovery_code(typed);
    let candidate = code.as_deref().unwrap_or("not-a-code");
    let argon2 = recovery_argon2();
    let mut matched = None;
    for (index, hash) in hashes.iter().enumerate() {
        let Ok(parsed) = PasswordHash::new(hash) else { continue };
        let ours = parsed.algorithm.as_str() == "argon2id"
            && Params::try_from(&parsed)
                .is_ok_and(|p| p.m_cost() == RECOVERY_MEMORY_KIB && p.t_cost() == RECOVERY_PASSES);
        if ours && argon2.verify_password(candidate.as_bytes(), &parsed).is_ok() && code.is_some() && matched.is_none()
        {
            matched = u32::try_from(index).ok();
        }
    }
    matched
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B's SHA-1 seed: "12345678901234567890".
    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc_6238_test_vectors() {
        // Appendix B gives 8 digits; a 6-digit code is the last six of the same value.
        for (time, eight) in [
            (59u64, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(code_at_step(RFC_SECRET, step_at(time)).unwrap(), eight[2..], "at {time}");
            assert_eq!(check(RFC_SECRET, &eight[2..], time, None).unwrap(), Some(step_at(time)));
        }
    }

    #[test]
    fn rfc_4226_hotp_vectors() {
        let expected =
            ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"];
        for (counter, code) in expected.iter().enumerate() {
            assert_eq!(code_at_step(RFC_SECRET, counter as u64).unwrap(), *code);
        }
    }

    #[test]
    fn one_step_of_drift_either_way_is_accepted_and_three_are_not() {
        let now: u64 = 1_700_000_000;
        for (offset, accepted) in [(-90i64, false), (-30, true), (0, true), (30, true), (90, false)] {
            let code = code_at_step(RFC_SECRET, step_at(now.checked_add_signed(offset).unwrap())).unwrap();
            let matched = check(RFC_SECRET, &code, now, None).unwrap();
            assert_eq!(matched.is_some(), accepted, "drift {offset}s");
            if accepted {
                assert_eq!(matched, Some(step_at(now.checked_add_signed(offset).unwrap())), "the step is named");
            }
        }
    }

    #[test]
    fn a_step_at_or_before_the_last_one_used_is_refused() {
        let now = 1_700_000_000;
        let code = code_at_step(RFC_SECRET, step_at(now)).unwrap();
        assert_eq!(check(RFC_SECRET, &code, now, Some(step_at(now) - 1)).unwrap(), Some(step_at(now)));
        assert_eq!(check(RFC_SECRET, &code, now, Some(step_at(now))).unwrap(), None, "replayed");
        // The previous step's code, after the current one was used: refused too.
        let before = code_at_step(RFC_SECRET, step_at(now) - 1).unwrap();
        assert_eq!(check(RFC_SECRET, &before, now, Some(step_at(now))).unwrap(), None);
    }

    #[test]
    fn malformed_codes_and_secrets_are_refused() {
        let now = 1_700_000_000;
        let code = code_at_step(RFC_SECRET, step_at(now)).unwrap();
        let spaced = format!("{} {}", &code[..3], &code[3..]);
        assert!(check(RFC_SECRET, &spaced, now, None).unwrap().is_some(), "spaces are ignored");
        for bad in ["", "12345", "1234567", "abcdef", &format!("{code}0"), &format!("+{}", &code[1..])] {
            assert_eq!(check(RFC_SECRET, bad, now, None).unwrap(), None, "{bad:?}");
        }
        assert_eq!(check(b"short", &code, now, None), Err(OtpError::InvalidSecret));
        assert_eq!(code_at_step(&[0; 65], 1), Err(OtpError::InvalidSecret));
    }

    #[test]
    fn base32_and_the_uri_read_as_apps_expect() {
        // RFC 4648 §10.
        for (input, output) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32(input.as_bytes()), output);
        }
        let secret = new_secret().unwrap();
        assert_eq!(secret.len(), 20);
        assert_eq!(base32(&secret).len(), 32);
        let uri = otpauth_uri(RFC_SECRET, "Loom Auth", "ada@example.com");
        assert_eq!(
            uri,
            "otpauth://totp/Loom%20Auth:ada%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Loom%20Auth\
             &algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn recovery_codes_are_ten_distinct_typeable_codes_checked_once_by_hash() {
        let codes = new_recovery_codes().unwrap();
        assert_eq!(codes.len(), 10);
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 10);
        for code in &codes {
            assert_eq!(code.len(), 11);
            assert_eq!(normalize_recovery_code(code).as_deref(), Some(code.as_str()));
        }
        let hashes: Vec<String> = codes.iter().map(|c| hash_recovery_code(c).unwrap()).collect();
        assert!(hashes.iter().all(|h| h.starts_with("$argon2id$v=19$m=4096,t=1,p=1$") && !h.contains(&codes[0])));
        assert_eq!(match_recovery_code(&codes[3], &hashes), Some(3));
        // As a person may type it: upper case, without the dash, with spaces.
        let typed = format!(" {} ", codes[7].to_uppercase().replace('-', " "));
        assert_eq!(match_recovery_code(&typed, &hashes), Some(7));
        assert_eq!(match_recovery_code("00000-00000", &hashes), None);
        assert_eq!(match_recovery_code("not a code", &hashes), None);
        assert_eq!(match_recovery_code(&codes[3], &[]), None);
        // A password hash of the code (other parameters) is not a recovery code's.
        let password_hash = crate::passwords::hash(&codes[0]).unwrap();
        assert_eq!(match_recovery_code(&codes[0], &[password_hash]), None);
    }

    #[test]
    fn typed_recovery_codes_read_confusable_letters_as_digits() {
        assert_eq!(normalize_recovery_code("O1IL0-abcde").as_deref(), Some("01110-abcde"));
        assert_eq!(normalize_recovery_code("abcde-fghjk-m"), None, "too long");
        assert_eq!(normalize_recovery_code("abcd"), None, "too short");
        assert_eq!(normalize_recovery_code("abcde-fghju"), None, "u is not in the alphabet");
        assert_eq!(normalize_recovery_code("ábcde-fghjk"), None);
    }
}
