//! Password hashing with argon2id, stored as PHC strings.

use argon2::password_hash::{self, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// OWASP's argon2id recommendation: 19 MiB of memory.
#[cfg(not(feature = "hardened"))]
pub const MEMORY_KIB: u32 = 19_456;
/// OWASP's argon2id recommendation: two passes.
#[cfg(not(feature = "hardened"))]
pub const ITERATIONS: u32 = 2;
/// The hardened build's memory cost: 32 MiB.
#[cfg(feature = "hardened")]
pub const MEMORY_KIB: u32 = 32_768;
/// The hardened build's passes.
#[cfg(feature = "hardened")]
pub const ITERATIONS: u32 = 3;
/// OWASP's argon2id recommendation: one lane.
pub const PARALLELISM: u32 = 1;
pub use crate::password_error::{MAX_PASSWORD_BYTES, PasswordError};
/// Salt length in bytes.
const SALT_BYTES: usize = 16;

/// The outcome of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordCheck {
    pub matches: bool,
    /// The hash uses weaker parameters than [`current_params`]: store a new one.
    pub needs_rehash: bool,
}

/// The parameters new hashes are made with.
pub fn current_params() -> Params {
    Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).expect("constant argon2 parameters are valid")
}

/// Hashes `password` with argon2id and a fresh random 16-byte salt.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    check_length(password)?;
    let mut salt = [0u8; SALT_BYTES];
    getrandom::fill(&mut salt).map_err(|_| PasswordError::Internal)?;
    let salt = SaltString::encode_b64(&salt).map_err(|_| PasswordError::Internal)?;
    Argon2::new(Algorithm::Argon2id, Version::V0x13, current_params())
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|_| PasswordError::Internal)
}

/// The most memory an argon2 hash may ask for to be checked (256 MiB), in KiB.
pub const MAX_CHECK_MEMORY_KIB: u32 = 256 * 1024;
/// The most passes an argon2 hash may ask for to be checked.
pub const MAX_CHECK_PASSES: u32 = 10;
/// The most lanes an argon2 hash may have to be checked.
pub const MAX_CHECK_LANES: u32 = 16;

/// Checks `password` against a stored hash: any argon2 (`argon2id`, `argon2i`, `argon2d`) PHC
/// string within [`MAX_CHECK_MEMORY_KIB`] and [`MAX_CHECK_PASSES`], or one of the foreign formats
/// imported accounts carry ([`crate::foreign`]), in constant time with respect to the hash
/// output. A match asks for a re-hash unless the hash is argon2id with exactly the parameters
/// new hashes get: the serving component's parameters are the ones every account moves to.
pub fn verify(password: &str, phc: &str) -> Result<PasswordCheck, PasswordError> {
    check_length(password)?;
    if crate::foreign::is_foreign(phc) {
        let matches = crate::foreign::verify(password, phc)?;
        return Ok(PasswordCheck { matches, needs_rehash: true });
    }
    let parsed = PasswordHash::new(phc).map_err(|_| PasswordError::MalformedHash)?;
    let algorithm = Algorithm::try_from(parsed.algorithm).map_err(|_| PasswordError::MalformedHash)?;
    let params = Params::try_from(&parsed).map_err(|_| PasswordError::MalformedHash)?;
    let version = parsed
        .version
        .map(Version::try_from)
        .transpose()
        .map_err(|_| PasswordError::MalformedHash)?
        .unwrap_or(Version::V0x10);
    if parsed.salt.is_none() || parsed.hash.is_none() {
        return Err(PasswordError::MalformedHash);
    }
    if params.m_cost() > MAX_CHECK_MEMORY_KIB || params.t_cost() > MAX_CHECK_PASSES || params.p_cost() > MAX_CHECK_LANES
    {
        return Err(PasswordError::MalformedHash);
    }
    let matches = match Argon2::default().verify_password(password.as_bytes(), &parsed) {
        Ok(()) => true,
        Err(password_hash::Error::Password) => false,
        Err(_) => return Err(PasswordError::MalformedHash),
    };
    let current = current_params();
    let needs_rehash = algorithm != Algorithm::Argon2id
        || version != Version::V0x13
        || params.m_cost() != current.m_cost()
        || params.t_cost() != current.t_cost()
        || params.p_cost() != current.p_cost();
    Ok(PasswordCheck { matches, needs_rehash })
}

fn check_length(password: &str) -> Result<(), PasswordError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::PasswordTooLong);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cheap argon2id hash (weaker than current) for tests that need one quickly.
    fn weak_hash(password: &str) -> String {
        let salt = SaltString::encode_b64(&[7u8; 16]).unwrap();
        Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(1024, 1, 1, None).unwrap())
            .hash_password(password.as_bytes(), &salt)
            .unwrap()
            .to_string()
    }

    #[test]
    fn round_trip_matches_and_is_current() {
        let phc = hash("correct horse battery staple").unwrap();
        let prefix = format!("$argon2id$v=19$m={MEMORY_KIB},t={ITERATIONS},p={PARALLELISM}$");
        assert!(phc.starts_with(&prefix), "{phc}");
        let check = verify("correct horse battery staple", &phc).unwrap();
        assert_eq!(check, PasswordCheck { matches: true, needs_rehash: false });
    }

    #[test]
    fn wrong_password_does_not_match() {
        let phc = hash("correct horse battery staple").unwrap();
        let check = verify("correct horse battery stapl", &phc).unwrap();
        assert!(!check.matches);
    }

    #[test]
    fn salts_are_random() {
        assert_ne!(hash("same password").unwrap(), hash("same password").unwrap());
    }

    #[test]
    fn unicode_passwords_round_trip() {
        let phc = weak_hash("pässwörd 🔑 密码");
        assert!(verify("pässwörd 🔑 密码", &phc).unwrap().matches);
        assert!(!verify("passwörd 🔑 密码", &phc).unwrap().matches);
    }

    #[test]
    fn weaker_parameters_need_rehash_but_still_verify() {
        let phc = weak_hash("hunter22");
        let check = verify("hunter22", &phc).unwrap();
        assert_eq!(check, PasswordCheck { matches: true, needs_rehash: true });
    }

    #[test]
    fn stronger_or_other_parameters_move_to_the_current_ones_too() {
        // pwdlib's default (FastAPI's tutorial): 64 MiB, 3 passes, 4 lanes.
        let salt = SaltString::encode_b64(&[2u8; 16]).unwrap();
        let pwdlib = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(65536, 3, 4, None).unwrap())
            .hash_password(b"hunter22", &salt)
            .unwrap()
            .to_string();
        assert_eq!(verify("hunter22", &pwdlib).unwrap(), PasswordCheck { matches: true, needs_rehash: true });
    }

    /// An argon2 hash of `password` with exactly these parameters.
    fn hash_with(algorithm: Algorithm, version: Version, m: u32, t: u32, p: u32, password: &str) -> String {
        let salt = SaltString::encode_b64(&[3u8; 16]).unwrap();
        Argon2::new(algorithm, version, Params::new(m, t, p, None).unwrap())
            .hash_password(password.as_bytes(), &salt)
            .unwrap()
            .to_string()
    }

    #[test]
    fn any_one_parameter_off_the_current_ones_asks_for_a_rehash() {
        let (m, t, p) = (MEMORY_KIB, ITERATIONS, PARALLELISM);
        for (what, phc) in [
            ("version 0x10", hash_with(Algorithm::Argon2id, Version::V0x10, m, t, p, "hunter22")),
            ("memory", hash_with(Algorithm::Argon2id, Version::V0x13, m + 8, t, p, "hunter22")),
            ("passes", hash_with(Algorithm::Argon2id, Version::V0x13, m, t + 1, p, "hunter22")),
            ("lanes", hash_with(Algorithm::Argon2id, Version::V0x13, m, t, p + 1, "hunter22")),
        ] {
            assert_eq!(
                verify("hunter22", &phc).unwrap(),
                PasswordCheck { matches: true, needs_rehash: true },
                "{what}"
            );
        }
    }

    #[test]
    fn hashes_at_the_check_limits_verify_and_one_past_them_are_refused() {
        let at_limits = [
            hash_with(Algorithm::Argon2id, Version::V0x13, 8 * MAX_CHECK_LANES, 1, MAX_CHECK_LANES, "hunter22"),
            hash_with(Algorithm::Argon2id, Version::V0x13, 8, MAX_CHECK_PASSES, 1, "hunter22"),
            hash_with(Algorithm::Argon2id, Version::V0x13, MAX_CHECK_MEMORY_KIB, 1, 1, "hunter22"),
        ];
        for phc in &at_limits {
            assert!(verify("hunter22", phc).unwrap().matches, "{phc}");
        }
        let past = [
            at_limits[0].replace(&format!(",p={MAX_CHECK_LANES}$"), &format!(",p={}$", MAX_CHECK_LANES + 1)),
            at_limits[1].replace(&format!(",t={MAX_CHECK_PASSES},"), &format!(",t={},", MAX_CHECK_PASSES + 1)),
            at_limits[2].replace(&format!("m={MAX_CHECK_MEMORY_KIB},"), &format!("m={},", MAX_CHECK_MEMORY_KIB + 1)),
        ];
        for (phc, limit) in past.iter().zip(&at_limits) {
            assert_ne!(phc, limit, "the parameter was moved");
            assert_eq!(verify("hunter22", phc), Err(PasswordError::MalformedHash), "{phc}");
        }
    }

    #[test]
    fn foreign_formats_verify_and_need_rehash() {
        let passlib = "$pbkdf2-sha256$29000$N2YMIWQsBWBMae09x1jrPQ$1t8iyB2A.WF/Z5JZv.lfCIhXXN33N23OSgQYThBYRfk";
        assert_eq!(verify("toomanysecrets", passlib).unwrap(), PasswordCheck { matches: true, needs_rehash: true });
        assert!(!verify("password", passlib).unwrap().matches);
        let bcrypt = "$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";
        assert_eq!(verify("U*U", bcrypt).unwrap(), PasswordCheck { matches: true, needs_rehash: true });
    }

    #[test]
    fn other_argon2_variants_verify_and_need_rehash() {
        let salt = SaltString::encode_b64(&[1u8; 16]).unwrap();
        let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).unwrap();
        let phc = Argon2::new(Algorithm::Argon2i, Version::V0x13, params)
            .hash_password(b"hunter22", &salt)
            .unwrap()
            .to_string();
        let check = verify("hunter22", &phc).unwrap();
        assert_eq!(check, PasswordCheck { matches: true, needs_rehash: true });
    }

    #[test]
    fn malformed_hashes_are_errors() {
        for phc in [
            "",
            "not a hash",
            "$argon2id$",
            "$argon2id$v=19$m=19456,t=2,p=1$",
            "$argon2id$v=19$m=abc,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaA",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0",
            "$scrypt$ln=15,r=8,p=1$c2FsdA$aGFzaA",
            // Beyond what one check may spend: memory, passes, lanes.
            "$argon2id$v=19$m=262145,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
            "$argon2id$v=19$m=19456,t=11,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
            "$argon2id$v=19$m=19456,t=2,p=17$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
            "plaintext password",
        ] {
            assert_eq!(verify("hunter22", phc), Err(PasswordError::MalformedHash), "{phc:?}");
        }
    }

    #[test]
    fn tampered_hash_output_does_not_match() {
        let phc = weak_hash("hunter22");
        let (head, output) = phc.rsplit_once('$').unwrap();
        let mut bytes = output.as_bytes().to_vec();
        bytes[0] = if bytes[0] == b'A' { b'B' } else { b'A' };
        let tampered = format!("{head}${}", String::from_utf8(bytes).unwrap());
        assert!(!verify("hunter22", &tampered).unwrap().matches);
    }

    #[test]
    fn tampered_salt_does_not_match() {
        let phc = weak_hash("hunter22");
        let tampered = phc.replace("BwcHBwcHBwcHBwcHBwcHBw", "CAgICAgICAgICAgICAgICA");
        assert_ne!(phc, tampered);
        assert!(!verify("hunter22", &tampered).unwrap().matches);
    }

    #[test]
    fn over_long_passwords_are_refused_before_hashing() {
        let long = "x".repeat(MAX_PASSWORD_BYTES + 1);
        assert_eq!(hash(&long), Err(PasswordError::PasswordTooLong));
        assert_eq!(verify(&long, &weak_hash("x")), Err(PasswordError::PasswordTooLong));
        let longest = "x".repeat(MAX_PASSWORD_BYTES);
        assert!(verify(&longest, &weak_hash(&longest)).unwrap().matches);
    }
}
