//! Password hashes other services made, checked so their users can log in after an import:
//! bcrypt (`$2a$`, `$2b$`, `$2y$`, as passlib's and the `bcrypt` library's) and passlib's
//! `pbkdf2_sha256` (`$pbkdf2-sha256$rounds$salt$checksum`, in passlib's adapted base64). Each
//! is refused when its cost is beyond what one login may spend ([`MAX_BCRYPT_COST`],
//! [`MAX_PBKDF2_ROUNDS`]): a hostile row must not make a login run for minutes.
//!
//! A match always asks for a re-hash: the account moves to argon2id at its next login.

use pbkdf2::pbkdf2_hmac;
use sha2::Sha256;

use crate::password_error::PasswordError;

/// The dearest bcrypt cost checked (2^16 rounds: seconds).
pub const MAX_BCRYPT_COST: u32 = 16;
/// The most PBKDF2 iterations checked.
pub const MAX_PBKDF2_ROUNDS: u32 = 10_000_000;

/// Whether `hash` is one of the foreign formats (it may still be malformed).
pub fn is_foreign(hash: &str) -> bool {
    is_bcrypt(hash) || hash.starts_with("$pbkdf2-sha256$")
}

fn is_bcrypt(hash: &str) -> bool {
    ["$2a$", "$2b$", "$2y$"].iter().any(|prefix| hash.starts_with(prefix))
}

/// Whether `password` matches the foreign `hash`.
pub fn verify(password: &str, hash: &str) -> Result<bool, PasswordError> {
    if is_bcrypt(hash) {
        verify_bcrypt(password, hash)
    } else if let Some(rest) = hash.strip_prefix("$pbkdf2-sha256$") {
        verify_pbkdf2_sha256(password, rest)
    } else {
        Err(PasswordError::MalformedHash)
    }
}

/// bcrypt, as passlib and OpenBSD write it: `$2b$CC$` then 22 characters of salt and 31 of
/// hash, in bcrypt's own base64. Like them, only the first 72 bytes of a password count.
fn verify_bcrypt(password: &str, hash: &str) -> Result<bool, PasswordError> {
    let cost: u32 = hash.get(4..6).and_then(|c| c.parse().ok()).ok_or(PasswordError::MalformedHash)?;
    if !(4..=MAX_BCRYPT_COST).contains(&cost) || hash.len() != 60 || hash.as_bytes()[6] != b'$' {
        return Err(PasswordError::MalformedHash);
    }
    bcrypt::verify(password, hash).map_err(|_| PasswordError::MalformedHash)
}

/// passlib's `pbkdf2_sha256`: `rounds$salt$checksum` (after the prefix), salt and checksum in
/// passlib's adapted base64 (standard base64 with `.` for `+`, no padding); the checksum is
/// PBKDF2-HMAC-SHA256 of the password, 32 bytes.
fn verify_pbkdf2_sha256(password: &str, rest: &str) -> Result<bool, PasswordError> {
    let mut parts = rest.split('$');
    let (Some(rounds), Some(salt), Some(checksum), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(PasswordError::MalformedHash);
    };
    let rounds: u32 = rounds.parse().map_err(|_| PasswordError::MalformedHash)?;
    if !(1..=MAX_PBKDF2_ROUNDS).contains(&rounds) {
        return Err(PasswordError::MalformedHash);
    }
    let salt = ab64_decode(salt)?;
    let expected = ab64_decode(checksum)?;
    if expected.len() != 32 || salt.is_empty() {
        return Err(PasswordError::MalformedHash);
    }
    let mut derived = [0u8; 32];
    pbkdf2_hmac::<Sha256>(password.as_bytes(), &salt, rounds, &mut derived);
    Ok(constant_time_eq(&derived, &expected))
}

/// passlib's adapted base64: the standard alphabet with `.` for `+`, without padding.
fn ab64_decode(text: &str) -> Result<Vec<u8>, PasswordError> {
    use base64::Engine;
    let standard = text.replace('.', "+");
    base64::engine::general_purpose::STANDARD_NO_PAD.decode(standard).map_err(|_| PasswordError::MalformedHash)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// passlib's documentation example of a `pbkdf2_sha256` hash, of "toomanysecrets".
    const PASSLIB_PBKDF2: &str =
        "$pbkdf2-sha256$29000$N2YMIWQsBWBMae09x1jrPQ$1t8iyB2A.WF/Z5JZv.lfCIhXXN33N23OSgQYThBYRfk";

    #[test]
    fn passlibs_own_pbkdf2_example_verifies() {
        assert_eq!(verify("toomanysecrets", PASSLIB_PBKDF2), Ok(true));
        assert_eq!(verify("toomanysecret", PASSLIB_PBKDF2), Ok(false));
    }

    #[test]
    fn bcrypt_vectors_of_each_prefix_verify() {
        // From the OpenBSD test vectors (as the `bcrypt` crate and passlib use them): "U*U", cost 5.
        let openbsd = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";
        assert_eq!(verify("U*U", openbsd), Ok(true));
        assert_eq!(verify("U*U*", openbsd), Ok(false));
        for prefix in ["$2b$", "$2y$"] {
            let same = openbsd.replacen("$2a$", prefix, 1);
            assert_eq!(verify("U*U", &same), Ok(true), "{prefix}");
        }
    }

    #[test]
    fn checksums_that_differ_anywhere_are_unequal() {
        assert!(constant_time_eq(&[1, 2, 3], &[1, 2, 3]));
        // Two differences that would cancel out if they were combined with XOR.
        assert!(!constant_time_eq(&[1, 2], &[0, 3]));
        assert!(!constant_time_eq(&[1, 2, 3], &[1, 2]));
    }

    #[test]
    fn hostile_or_broken_rows_are_refused_before_any_work() {
        for hash in [
            // bcrypt cost 17 and 31: beyond what one login may spend.
            "$2b$17$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
            "$2b$31$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
            "$2b$03$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
            "$2b$05$short",
            "$pbkdf2-sha256$10000001$N2YMIWQsBWBMae09x1jrPQ$1t8iyB2A.WF/Z5JZv.lfCIhXXN33N23OSgQYThBYRfk",
            "$pbkdf2-sha256$0$N2YMIWQsBWBMae09x1jrPQ$1t8iyB2A.WF/Z5JZv.lfCIhXXN33N23OSgQYThBYRfk",
            "$pbkdf2-sha256$29000$N2YMIWQsBWBMae09x1jrPQ",
            "$pbkdf2-sha256$29000$N2YMIWQsBWBMae09x1jrPQ$tooshort",
            "$pbkdf2-sha256$29000$$1t8iyB2A.WF/Z5JZv.lfCIhXXN33N23OSgQYThBYRfk",
            "$pbkdf2-sha256$many$N2YMIWQsBWBMae09x1jrPQ$1t8iyB2A.WF/Z5JZv.lfCIhXXN33N23OSgQYThBYRfk",
        ] {
            assert_eq!(verify("password", hash), Err(PasswordError::MalformedHash), "{hash}");
        }
    }
}
