//! Access tokens: HS256 JWTs with `sub`, `iss`, `iat`, `exp` and a random `jti`.
//!
//! The algorithm is pinned: a token whose header names anything but HS256
//! (including `none`) is refused before its signature is looked at. Time checks
//! use the clock the host passes in, never the component's own.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// The one signing algorithm this component issues and accepts.
pub const ALGORITHM: Algorithm = Algorithm::HS256;
/// Random bytes in a token id.
const JTI_BYTES: usize = 16;

/// What a token operation needs from the host.
#[derive(Clone)]
pub struct TokenSettings<'a> {
    pub signing_key: &'a [u8],
    pub issuer: &'a str,
    /// Seconds since the Unix epoch.
    pub now: i64,
    pub ttl_seconds: u32,
    pub leeway_seconds: u32,
}

/// The claims of a valid token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub iss: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
}

/// Why a token was refused or could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token's algorithm is not allowed")]
    AlgorithmNotAllowed,
    #[error("the token's signature does not match")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued by someone else")]
    WrongIssuer,
    #[error("the token lacks a required claim")]
    MissingClaim,
    #[error("the signing key is unusable")]
    InvalidKey,
    #[error("signing failed")]
    Internal,
}

/// Claims as found in a token, before any is known to be present.
#[derive(Deserialize)]
struct FoundClaims {
    sub: Option<String>,
    iss: Option<String>,
    iat: Option<i64>,
    exp: Option<i64>,
    jti: Option<String>,
    nbf: Option<i64>,
}

/// Issues a token for `subject`, valid from `settings.now` for `settings.ttl_seconds`.
pub fn issue(settings: &TokenSettings<'_>, subject: &str) -> Result<(String, Claims), TokenError> {
    if settings.signing_key.is_empty() {
        return Err(TokenError::InvalidKey);
    }
    let mut id = [0u8; JTI_BYTES];
    getrandom::fill(&mut id).map_err(|_| TokenError::Internal)?;
    let claims = Claims {
        sub: subject.to_owned(),
        iss: settings.issuer.to_owned(),
        iat: settings.now,
        exp: settings.now.saturating_add(i64::from(settings.ttl_seconds)),
        jti: URL_SAFE_NO_PAD.encode(id),
    };
    let token = jsonwebtoken::encode(&Header::new(ALGORITHM), &claims, &EncodingKey::from_secret(settings.signing_key))
        .map_err(|_| TokenError::Internal)?;
    Ok((token, claims))
}

/// Verifies `token` (raw bytes as received) and returns its claims.
pub fn verify(settings: &TokenSettings<'_>, token: &[u8]) -> Result<Claims, TokenError> {
    if settings.signing_key.is_empty() {
        return Err(TokenError::InvalidKey);
    }
    let token = std::str::from_utf8(token).map_err(|_| TokenError::Malformed)?;
    check_algorithm(token)?;

    let mut validation = Validation::new(ALGORITHM);
    // Time and issuer are checked below against the host's clock and settings.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let found =
        jsonwebtoken::decode::<FoundClaims>(token, &DecodingKey::from_secret(settings.signing_key), &validation)
            .map_err(|error| match error.kind() {
                ErrorKind::InvalidSignature => TokenError::BadSignature,
                ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => TokenError::AlgorithmNotAllowed,
                _ => TokenError::Malformed,
            })?
            .claims;

    let leeway = i64::from(settings.leeway_seconds);
    let (Some(sub), Some(iat), Some(exp), Some(jti)) = (found.sub, found.iat, found.exp, found.jti) else {
        return Err(TokenError::MissingClaim);
    };
    if found.iss.as_deref() != Some(settings.issuer) {
        return Err(TokenError::WrongIssuer);
    }
    if settings.now > exp.saturating_add(leeway) {
        return Err(TokenError::Expired);
    }
    let not_before = found.nbf.map_or(iat, |nbf| nbf.max(iat));
    if not_before > settings.now.saturating_add(leeway) {
        return Err(TokenError::NotYetValid);
    }
    if sub.is_empty() {
        return Err(TokenError::MissingClaim);
    }
    Ok(Claims { sub, iss: settings.issuer.to_owned(), iat, exp, jti })
}

/// Refuses any token whose header does not name [`ALGORITHM`], telling a
/// foreign or `none` algorithm apart from a header that is not JSON at all.
fn check_algorithm(token: &str) -> Result<(), TokenError> {
    let header = token.split('.').next().ok_or(TokenError::Malformed)?;
    let header = URL_SAFE_NO_PAD.decode(header).map_err(|_| TokenError::Malformed)?;
    let header: serde_json::Value = serde_json::from_slice(&header).map_err(|_| TokenError::Malformed)?;
    match header.get("alg").and_then(serde_json::Value::as_str) {
        Some("HS256") => Ok(()),
        Some(_) => Err(TokenError::AlgorithmNotAllowed),
        None => Err(TokenError::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";
    const NOW: i64 = 1_800_000_000;

    fn settings() -> TokenSettings<'static> {
        TokenSettings { signing_key: KEY, issuer: "loom-auth", now: NOW, ttl_seconds: 1800, leeway_seconds: 5 }
    }

    fn b64(json: &str) -> String {
        URL_SAFE_NO_PAD.encode(json)
    }

    /// Signs arbitrary header and claims JSON with HS256 and `KEY`.
    fn signed(header: &str, claims: &str) -> String {
        use hmac::{Hmac, Mac};
        let message = format!("{}.{}", b64(header), b64(claims));
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(KEY).unwrap();
        mac.update(message.as_bytes());
        format!("{message}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn round_trip() {
        let (token, claims) = issue(&settings(), "42").unwrap();
        assert_eq!(claims.sub, "42");
        assert_eq!(claims.iss, "loom-auth");
        assert_eq!(claims.iat, NOW);
        assert_eq!(claims.exp, NOW + 1800);
        assert_eq!(URL_SAFE_NO_PAD.decode(&claims.jti).unwrap().len(), JTI_BYTES);
        assert_eq!(verify(&settings(), token.as_bytes()), Ok(claims));
    }

    #[test]
    fn token_ids_are_random() {
        let (_, a) = issue(&settings(), "1").unwrap();
        let (_, b) = issue(&settings(), "1").unwrap();
        assert_ne!(a.jti, b.jti);
    }

    #[test]
    fn expiry_honours_the_leeway() {
        let (token, _) = issue(&settings(), "1").unwrap();
        let at = |now| TokenSettings { now, ..settings() };
        assert!(verify(&at(NOW + 1800 + 5), token.as_bytes()).is_ok());
        assert_eq!(verify(&at(NOW + 1800 + 6), token.as_bytes()), Err(TokenError::Expired));
    }

    #[test]
    fn not_yet_valid_tokens_are_refused() {
        let (token, _) = issue(&settings(), "1").unwrap();
        let earlier = TokenSettings { now: NOW - 60, ..settings() };
        assert_eq!(verify(&earlier, token.as_bytes()), Err(TokenError::NotYetValid));
        let nbf = signed(
            r#"{"alg":"HS256","typ":"JWT"}"#,
            &format!(r#"{{"sub":"1","iss":"loom-auth","iat":{NOW},"exp":{},"jti":"x","nbf":{}}}"#, NOW + 600, NOW + 60),
        );
        assert_eq!(verify(&settings(), nbf.as_bytes()), Err(TokenError::NotYetValid));
    }

    #[test]
    fn wrong_key_is_a_bad_signature() {
        let (token, _) = issue(&settings(), "1").unwrap();
        let other = TokenSettings { signing_key: b"another key, 32 bytes long......", ..settings() };
        assert_eq!(verify(&other, token.as_bytes()), Err(TokenError::BadSignature));
    }

    #[test]
    fn tampered_claims_are_a_bad_signature() {
        let (token, _) = issue(&settings(), "1").unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let claims = b64(&format!(r#"{{"sub":"2","iss":"loom-auth","iat":{NOW},"exp":{},"jti":"x"}}"#, NOW + 1800));
        let forged = format!("{}.{claims}.{}", parts[0], parts[2]);
        assert_eq!(verify(&settings(), forged.as_bytes()), Err(TokenError::BadSignature));
    }

    #[test]
    fn alg_none_is_refused() {
        let claims = format!(r#"{{"sub":"1","iss":"loom-auth","iat":{NOW},"exp":{},"jti":"x"}}"#, NOW + 600);
        for header in [r#"{"alg":"none","typ":"JWT"}"#, r#"{"alg":"None"}"#, r#"{"alg":"NONE"}"#] {
            let token = format!("{}.{}.", b64(header), b64(&claims));
            assert_eq!(verify(&settings(), token.as_bytes()), Err(TokenError::AlgorithmNotAllowed), "{header}");
        }
    }

    #[test]
    fn other_algorithms_are_refused_even_when_validly_signed() {
        use hmac::{Hmac, Mac};
        let claims = format!(r#"{{"sub":"1","iss":"loom-auth","iat":{NOW},"exp":{},"jti":"x"}}"#, NOW + 600);
        let message = format!("{}.{}", b64(r#"{"alg":"HS512","typ":"JWT"}"#), b64(&claims));
        let mut mac = Hmac::<sha2::Sha512>::new_from_slice(KEY).unwrap();
        mac.update(message.as_bytes());
        let token = format!("{message}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()));
        assert_eq!(verify(&settings(), token.as_bytes()), Err(TokenError::AlgorithmNotAllowed));
        for alg in ["RS256", "ES256", "EdDSA", "HS384", "PS256"] {
            let token = format!("{}.{}.c2ln", b64(&format!(r#"{{"alg":"{alg}"}}"#)), b64(&claims));
            assert_eq!(verify(&settings(), token.as_bytes()), Err(TokenError::AlgorithmNotAllowed), "{alg}");
        }
    }

    #[test]
    fn wrong_or_missing_issuer_is_refused() {
        let (token, _) = issue(&TokenSettings { issuer: "someone-else", ..settings() }, "1").unwrap();
        assert_eq!(verify(&settings(), token.as_bytes()), Err(TokenError::WrongIssuer));
        let no_iss =
            signed(r#"{"alg":"HS256"}"#, &format!(r#"{{"sub":"1","iat":{NOW},"exp":{},"jti":"x"}}"#, NOW + 600));
        assert_eq!(verify(&settings(), no_iss.as_bytes()), Err(TokenError::WrongIssuer));
    }

    #[test]
    fn missing_claims_are_refused() {
        for claims in [
            format!(r#"{{"iss":"loom-auth","iat":{NOW},"exp":{},"jti":"x"}}"#, NOW + 600),
            format!(r#"{{"sub":"1","iss":"loom-auth","iat":{NOW},"jti":"x"}}"#),
            format!(r#"{{"sub":"","iss":"loom-auth","iat":{NOW},"exp":{},"jti":"x"}}"#, NOW + 600),
        ] {
            let token = signed(r#"{"alg":"HS256"}"#, &claims);
            assert_eq!(verify(&settings(), token.as_bytes()), Err(TokenError::MissingClaim), "{claims}");
        }
    }

    #[test]
    fn truncated_and_garbage_tokens_are_malformed() {
        let (token, _) = issue(&settings(), "1").unwrap();
        let (without_signature, _) = token.rsplit_once('.').unwrap();
        for bad in [
            "",
            ".",
            "..",
            "abc",
            "a.b.c",
            without_signature,
            &token[..token.len() / 2],
            "eyJhbGciOiJIUzI1NiJ9.not base64!.sig",
            "bm90IGpzb24.e30.c2ln",
        ] {
            let result = verify(&settings(), bad.as_bytes());
            assert!(matches!(result, Err(TokenError::Malformed | TokenError::BadSignature)), "{bad:?} gave {result:?}");
        }
        assert_eq!(verify(&settings(), b"garbage"), Err(TokenError::Malformed));
    }

    #[test]
    fn non_utf8_bytes_are_malformed() {
        assert_eq!(verify(&settings(), b"\xff\xfe.\x80.\xc3"), Err(TokenError::Malformed));
        let (token, _) = issue(&settings(), "1").unwrap();
        let mut bytes = token.into_bytes();
        bytes.push(0xff);
        assert_eq!(verify(&settings(), &bytes), Err(TokenError::Malformed));
    }

    #[test]
    fn an_empty_key_is_refused() {
        let empty = TokenSettings { signing_key: b"", ..settings() };
        assert_eq!(issue(&empty, "1").map(|_| ()), Err(TokenError::InvalidKey));
        assert_eq!(verify(&empty, b"a.b.c"), Err(TokenError::InvalidKey));
    }
}
