//! The export layer: maps the `loom:auth` WIT world onto [`crate::passwords`] and [`crate::tokens`].

wit_bindgen::generate!({ path: "../wit", world: "authenticator" });

use exports::loom::auth::passwords::{self, PasswordCheck, PasswordError};
use exports::loom::auth::tokens::{self, Claims, IssuedToken, TokenError, TokenSettings};

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

impl tokens::Guest for Component {
    fn issue(settings: TokenSettings, subject: String) -> Result<IssuedToken, TokenError> {
        crate::tokens::issue(&settings_of(&settings), &subject)
            .map(|(token, claims)| IssuedToken { token, claims: claims_of(claims) })
            .map_err(token_error)
    }

    fn verify(settings: TokenSettings, token: Vec<u8>) -> Result<Claims, TokenError> {
        crate::tokens::verify(&settings_of(&settings), &token).map(claims_of).map_err(token_error)
    }
}

fn settings_of(settings: &TokenSettings) -> crate::tokens::TokenSettings<'_> {
    crate::tokens::TokenSettings {
        signing_key: &settings.signing_key,
        issuer: &settings.issuer,
        now: settings.now,
        ttl_seconds: settings.ttl_seconds,
        leeway_seconds: settings.leeway_seconds,
    }
}

fn claims_of(claims: crate::tokens::Claims) -> Claims {
    let crate::tokens::Claims { sub, iss, iat, exp, jti } = claims;
    Claims { sub, iss, iat, exp, jti }
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
        E::MissingClaim => TokenError::MissingClaim,
        E::InvalidKey => TokenError::InvalidKey,
        E::Internal => TokenError::Internal,
    }
}

export!(Component);
