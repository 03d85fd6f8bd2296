//! The export layer: maps the `loom:auth` WIT world onto [`crate::passwords`], [`crate::keys`],
//! [`crate::tokens`] and [`crate::otp`].

wit_bindgen::generate!({ path: "../wit", world: "authenticator-with-second-factor" });

use exports::loom::auth::keys::{self, Algorithm, KeyError};
use exports::loom::auth::passwords::{self, PasswordCheck, PasswordError};
use exports::loom::auth::second_factor::{self, Enrolment, OtpError};
use exports::loom::auth::tokens::{self, Claims, IssuedToken, SigningKey, TokenError, TokenSettings, VerificationKey};

struct Component;

impl passwords::Guest for Component {
    fn hash(password: String) -> Result<String, PasswordError> {
        crate::passwords::hash(&password).map_err(password_error)
    }

    fn verify(password: String, phc: String) -> Result<PasswordCheck, PasswordError> {
        crate::passwords::verify(&password, &phc)
            .map(|check| PasswordCheck { matches: check.matches, needs_rehash: check.needs_rehash })
            .map_err(password_error)
    }
}

impl keys::Guest for Component {
    fn generate_key(alg: Algorithm) -> Result<Vec<u8>, KeyError> {
        crate::keys::generate(algorithm(alg)).map_err(key_error)
    }

    fn public_key(alg: Algorithm, private: Vec<u8>) -> Result<Vec<u8>, KeyError> {
        crate::keys::public_key(algorithm(alg), &private).map_err(key_error)
    }

    fn public_jwk(alg: Algorithm, private: Vec<u8>, kid: String) -> Result<String, KeyError> {
        crate::keys::public_jwk(algorithm(alg), &private, &kid).map_err(key_error)
    }
}

impl tokens::Guest for Component {
    fn issue(
        settings: TokenSettings,
        key: SigningKey,
        subject: String,
        client_id: String,
        extra: Vec<(String, String)>,
    ) -> Result<IssuedToken, TokenError> {
        let key = crate::tokens::SigningKey { kid: key.kid.as_deref(), alg: algorithm(key.alg), private: &key.private };
        crate::tokens::issue(&settings_of(&settings), &key, &subject, &client_id, &extra)
            .map(|(token, claims)| IssuedToken { token, claims: claims_of(claims) })
            .map_err(token_error)
    }

    fn verify(settings: TokenSettings, keys: Vec<VerificationKey>, token: Vec<u8>) -> Result<Claims, TokenError> {
        let keys: Vec<_> = keys
            .iter()
            .map(|key| crate::tokens::VerificationKey {
                kid: key.kid.as_deref(),
                alg: algorithm(key.alg),
                material: &key.material,
            })
            .collect();
        crate::tokens::verify(&settings_of(&settings), &keys, &token).map(claims_of).map_err(token_error)
    }
}

impl second_factor::Guest for Component {
    fn enrol(issuer: String, account: String) -> Result<Enrolment, OtpError> {
        let secret = crate::otp::new_secret().map_err(otp_error)?;
        let otpauth_uri = crate::otp::otpauth_uri(&secret, &issuer, &account);
        let (recovery_codes, recovery_hashes) = Self::new_recovery_codes()?;
        Ok(Enrolment { secret, otpauth_uri, recovery_codes, recovery_hashes })
    }

    fn check_code(
        secret: Vec<u8>,
        code: String,
        unix_seconds: u64,
        last_used_step: Option<u64>,
    ) -> Result<Option<u64>, OtpError> {
        crate::otp::check(&secret, &code, unix_seconds, last_used_step).map_err(otp_error)
    }

    fn new_recovery_codes() -> Result<(Vec<String>, Vec<String>), OtpError> {
        let codes = crate::otp::new_recovery_codes().map_err(otp_error)?;
        let hashes = codes.iter().map(|code| crate::otp::hash_recovery_code(code)).collect::<Result<_, _>>();
        Ok((codes, hashes.map_err(otp_error)?))
    }

    fn match_recovery_code(typed: String, hashes: Vec<String>) -> Option<u32> {
        crate::otp::match_recovery_code(&typed, &hashes)
    }
}

fn otp_error(error: crate::otp::OtpError) -> OtpError {
    match error {
        crate::otp::OtpError::InvalidSecret => OtpError::InvalidSecret,
        crate::otp::OtpError::Internal => OtpError::Internal,
    }
}

fn algorithm(alg: Algorithm) -> crate::keys::Algorithm {
    match alg {
        Algorithm::Hs256 => crate::keys::Algorithm::Hs256,
        Algorithm::Eddsa => crate::keys::Algorithm::EdDsa,
    }
}

fn settings_of(settings: &TokenSettings) -> crate::tokens::TokenSettings<'_> {
    crate::tokens::TokenSettings {
        issuer: &settings.issuer,
        audience: &settings.audience,
        now: settings.now,
        ttl_seconds: settings.ttl_seconds,
        leeway_seconds: settings.leeway_seconds,
    }
}

fn claims_of(claims: crate::tokens::Claims) -> Claims {
    let crate::tokens::Claims { sub, iss, aud, iat, exp, jti, client_id, kid, extra } = claims;
    Claims { sub, iss, aud, iat, exp, jti, client_id, kid, extra }
}

fn key_error(error: crate::keys::KeyError) -> KeyError {
    use crate::keys::KeyError as E;
    match error {
        E::NoPublicKey => KeyError::NoPublicKey,
        E::InvalidKey => KeyError::InvalidKey,
        E::Internal => KeyError::Internal,
    }
}

fn password_error(error: crate::passwords::PasswordError) -> PasswordError {
    use crate::passwords::PasswordError as E;
    match error {
        E::MalformedHash => PasswordError::MalformedHash,
        E::PasswordTooLong => PasswordError::PasswordTooLong,
        E::Internal => PasswordError::Internal,
    }
}

fn token_error(error: crate::tokens::TokenError) -> TokenError {
    use crate::tokens::TokenError as E;
    match error {
        E::Malformed => TokenError::Malformed,
        E::AlgorithmNotAllowed => TokenError::AlgorithmNotAllowed,
        E::BadSignature => TokenError::BadSignature,
        E::Expired => TokenError::Expired,
        E::NotYetValid => TokenError::NotYetValid,
        E::WrongIssuer => TokenError::WrongIssuer,
        E::WrongAudience => TokenError::WrongAudience,
        E::WrongType => TokenError::WrongType,
        E::UnknownKey => TokenError::UnknownKey,
        E::MissingClaim => TokenError::MissingClaim,
        E::InvalidClaim => TokenError::InvalidClaim,
        E::InvalidKey => TokenError::InvalidKey,
        E::Internal => TokenError::Internal,
    }
}

export!(Component);
