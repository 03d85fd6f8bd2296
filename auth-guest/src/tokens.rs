//! Access tokens: JWTs after RFC 9068 (`typ: at+jwt`), signed with HS256 or EdDSA.
//!
//! Issued tokens carry a `kid` naming their key and the claims `iss`, `sub`, `aud`, `exp`,
//! `iat`, `jti` and `client_id`, plus any extra claims the host asks for (so a later claim
//! needs no new contract). Verification follows RFC 8725: the key is looked up by `kid` in
//! the keys the host passed, and nowhere else (`jku`, `x5u`, `jwk` headers are never read);
//! the algorithm is pinned to that key's, so an EdDSA key's public half can never be used as
//! an HMAC secret; `typ` and `aud` are required. The one exception is the legacy key (the key
//! without a `kid`, imported from before 0.2): tokens without a `kid` are checked against it
//! as they were issued, without `typ`, `aud` or `client_id`. Time checks use the clock the
//! host passes in, never the component's own.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Map, Value};

use crate::keys::{self, Algorithm};

/// The media type of an access token (RFC 9068 §2.1).
pub const TYP: &str = "at+jwt";
/// Random bytes in a token id.
const JTI_BYTES: usize = 16;
/// Claims the component writes itself; extra claims may not replace them.
const RESERVED: &[&str] = &["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id"];

/// The key a token is signed with: private material.
#[derive(Clone, Copy)]
pub struct SigningKey<'a> {
    /// `None` only for the legacy key, whose tokens carry no `kid`.
    pub kid: Option<&'a str>,
    pub alg: Algorithm,
    /// The HS256 secret, or the Ed25519 seed.
    pub private: &'a [u8],
}

/// A key a token may be verified with: for HS256 its secret, for EdDSA only the public half.
#[derive(Clone, Copy)]
pub struct VerificationKey<'a> {
    pub kid: Option<&'a str>,
    pub alg: Algorithm,
    pub material: &'a [u8],
}

/// What a token operation needs from the host besides keys.
#[derive(Clone)]
pub struct TokenSettings<'a> {
    pub issuer: &'a str,
    /// The `aud` written, and required.
    pub audience: &'a str,
    /// Seconds since the Unix epoch.
    pub now: i64,
    pub ttl_seconds: u32,
    pub leeway_seconds: u32,
}

/// The claims of a valid token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub sub: String,
    pub iss: String,
    /// Empty for a legacy token.
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    /// Empty for a legacy token.
    pub client_id: String,
    /// The key it was verified with (`None`: the legacy key).
    pub kid: Option<String>,
    /// Every other claim: its name and JSON value.
    pub extra: Vec<(String, String)>,
}

/// Why a token was refused or could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token's algorithm is not its key's")]
    AlgorithmNotAllowed,
    #[error("the token's signature does not match")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued by someone else")]
    WrongIssuer,
    #[error("the token is meant for another audience")]
    WrongAudience,
    #[error("the token is not an access token (typ)")]
    WrongType,
    #[error("the token names no key this host verifies with")]
    UnknownKey,
    #[error("the token lacks a required claim")]
    MissingClaim,
    #[error("an extra claim is not a JSON value or replaces a standard one")]
    InvalidClaim,
    #[error("the signing key is unusable")]
    InvalidKey,
    #[error("signing failed")]
    Internal,
}

/// Issues a token for `subject` (for the client `client_id`), valid from `settings.now` for
/// `settings.ttl_seconds`, with `extra` claims (names and JSON values) besides the standard ones.
pub fn issue(
    settings: &TokenSettings<'_>,
    key: &SigningKey<'_>,
    subject: &str,
    client_id: &str,
    extra: &[(String, String)],
) -> Result<(String, Claims), TokenError> {
    let encoding = encoding_key(key)?;
    let mut id = [0u8; JTI_BYTES];
    getrandom::fill(&mut id).map_err(|_| TokenError::Internal)?;
    let claims = Claims {
        sub: subject.to_owned(),
        iss: settings.issuer.to_owned(),
        aud: settings.audience.to_owned(),
        iat: settings.now,
        exp: settings.now.saturating_add(i64::from(settings.ttl_seconds)),
        jti: URL_SAFE_NO_PAD.encode(id),
        client_id: client_id.to_owned(),
        kid: key.kid.map(str::to_owned),
        extra: extra.to_vec(),
    };
    let mut payload = Map::new();
    for (name, value) in extra {
        let value: Value = serde_json::from_str(value).map_err(|_| TokenError::InvalidClaim)?;
        if RESERVED.contains(&name.as_str()) {
            return Err(TokenError::InvalidClaim);
        }
        payload.insert(name.clone(), value);
    }
    payload.insert("iss".into(), claims.iss.clone().into());
    payload.insert("sub".into(), claims.sub.clone().into());
    payload.insert("aud".into(), claims.aud.clone().into());
    payload.insert("exp".into(), claims.exp.into());
    payload.insert("iat".into(), claims.iat.into());
    payload.insert("jti".into(), claims.jti.clone().into());
    payload.insert("client_id".into(), claims.client_id.clone().into());
    let mut header = Header::new(key.alg.jsonwebtoken());
    header.typ = Some(TYP.into());
    header.kid = key.kid.map(str::to_owned);
    let token = jsonwebtoken::encode(&header, &payload, &encoding).map_err(|_| TokenError::Internal)?;
    Ok((token, claims))
}

fn encoding_key(key: &SigningKey<'_>) -> Result<EncodingKey, TokenError> {
    match key.alg {
        Algorithm::Hs256 if key.private.len() >= keys::KEY_BYTES => Ok(EncodingKey::from_secret(key.private)),
        Algorithm::Hs256 => Err(TokenError::InvalidKey),
        Algorithm::EdDsa => {
            let signing = keys::ed25519(key.private).map_err(|_| TokenError::InvalidKey)?;
            let der = signing.to_pkcs8_der().map_err(|_| TokenError::Internal)?;
            Ok(EncodingKey::from_ed_der(der.as_bytes()))
        }
    }
}

fn decoding_key(key: &VerificationKey<'_>) -> Result<DecodingKey, TokenError> {
    match key.alg {
        Algorithm::Hs256 if key.material.len() >= keys::KEY_BYTES => Ok(DecodingKey::from_secret(key.material)),
        Algorithm::EdDsa if key.material.len() == keys::KEY_BYTES => Ok(DecodingKey::from_ed_der(key.material)),
        _ => Err(TokenError::InvalidKey),
    }
}

/// The header fields verification reads; any other (`jku`, `x5u`, `jwk`, ...) is ignored.
struct FoundHeader {
    alg: String,
    typ: Option<String>,
    kid: Option<String>,
}

fn read_header(token: &str) -> Result<FoundHeader, TokenError> {
    let header = token.split('.').next().ok_or(TokenError::Malformed)?;
    let header = URL_SAFE_NO_PAD.decode(header).map_err(|_| TokenError::Malformed)?;
    let header: Map<String, Value> = serde_json::from_slice(&header).map_err(|_| TokenError::Malformed)?;
    let text = |name: &str| match header.get(name) {
        None => Ok(None),
        Some(Value::String(value)) => Ok(Some(value.clone())),
        Some(_) => Err(TokenError::Malformed),
    };
    Ok(FoundHeader { alg: text("alg")?.ok_or(TokenError::Malformed)?, typ: text("typ")?, kid: text("kid")? })
}

/// Verifies `token` (raw bytes as received) against `keys` and returns its claims.
pub fn verify(settings: &TokenSettings<'_>, keys: &[VerificationKey<'_>], token: &[u8]) -> Result<Claims, TokenError> {
    let token = std::str::from_utf8(token).map_err(|_| TokenError::Malformed)?;
    let header = read_header(token)?;
    // The key is the host's, found by `kid` alone; a token without one may only be the legacy key's.
    let key = keys.iter().find(|key| key.kid == header.kid.as_deref()).ok_or(TokenError::UnknownKey)?;
    if header.alg != key.alg.name() {
        return Err(TokenError::AlgorithmNotAllowed);
    }
    let legacy = key.kid.is_none();
    let is_access_token = header
        .typ
        .as_deref()
        .is_some_and(|typ| typ.eq_ignore_ascii_case(TYP) || typ.eq_ignore_ascii_case("application/at+jwt"));
    if !legacy && !is_access_token {
        return Err(TokenError::WrongType);
    }

    let mut validation = Validation::new(key.alg.jsonwebtoken());
    // Time, issuer and audience are checked below against the host's clock and settings.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let mut found = jsonwebtoken::decode::<Map<String, Value>>(token, &decoding_key(key)?, &validation)
        .map_err(|error| match error.kind() {
            // (The header's algorithm was pinned to the key's above.)
            ErrorKind::InvalidSignature => TokenError::BadSignature,
            _ => TokenError::Malformed,
        })?
        .claims;

    let mut text = |name: &str| match found.remove(name) {
        None => Ok(None),
        Some(Value::String(value)) => Ok(Some(value)),
        Some(_) => Err(TokenError::MissingClaim),
    };
    let (sub, iss, jti, client_id) = (text("sub")?, text("iss")?, text("jti")?, text("client_id")?);
    let aud = found.remove("aud");
    let mut number = |name: &str| match found.remove(name) {
        None => Ok(None),
        Some(value) => value.as_i64().map(Some).ok_or(TokenError::MissingClaim),
    };
    let (iat, exp, nbf) = (number("iat")?, number("exp")?, number("nbf")?);

    let (Some(sub), Some(iat), Some(exp), Some(jti)) = (sub, iat, exp, jti) else {
        return Err(TokenError::MissingClaim);
    };
    if iss.as_deref() != Some(settings.issuer) {
        return Err(TokenError::WrongIssuer);
    }
    let audience_matches = match &aud {
        Some(Value::String(aud)) => aud == settings.audience,
        Some(Value::Array(auds)) => auds.iter().any(|aud| aud.as_str() == Some(settings.audience)),
        _ => false,
    };
    if !legacy && !audience_matches {
        return Err(TokenError::WrongAudience);
    }
    let leeway = i64::from(settings.leeway_seconds);
    if settings.now > exp.saturating_add(leeway) {
        return Err(TokenError::Expired);
    }
    let not_before = nbf.map_or(iat, |nbf| nbf.max(iat));
    if not_before > settings.now.saturating_add(leeway) {
        return Err(TokenError::NotYetValid);
    }
    if sub.is_empty() || (!legacy && client_id.is_none()) {
        return Err(TokenError::MissingClaim);
    }
    let extra = found.into_iter().map(|(name, value)| (name, value.to_string())).collect();
    Ok(Claims {
        sub,
        iss: settings.issuer.to_owned(),
        aud: if audience_matches { settings.audience.to_owned() } else { String::new() },
        iat,
        exp,
        jti,
        client_id: client_id.unwrap_or_default(),
        kid: key.kid.map(str::to_owned),
        extra,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const SEED: [u8; 32] = [7; 32];
    const NOW: i64 = 1_800_000_000;

    fn settings() -> TokenSettings<'static> {
        TokenSettings { issuer: "loom-auth", audience: "loom", now: NOW, ttl_seconds: 1800, leeway_seconds: 5 }
    }

    fn ed_signing() -> SigningKey<'static> {
        SigningKey { kid: Some("ed-1"), alg: Algorithm::EdDsa, private: &SEED }
    }

    fn ed_public() -> Vec<u8> {
        keys::public_key(Algorithm::EdDsa, &SEED).unwrap()
    }

    fn hs_signing() -> SigningKey<'static> {
        SigningKey { kid: Some("hs-1"), alg: Algorithm::Hs256, private: SECRET }
    }

    /// The keys a host would pass: the EdDSA key's public half, an HS256 key, the legacy secret.
    fn with_keys<R>(f: impl FnOnce(&[VerificationKey<'_>]) -> R) -> R {
        let public = ed_public();
        let keys = [
            VerificationKey { kid: Some("ed-1"), alg: Algorithm::EdDsa, material: &public },
            VerificationKey { kid: Some("hs-1"), alg: Algorithm::Hs256, material: SECRET },
            VerificationKey { kid: None, alg: Algorithm::Hs256, material: b"the legacy secret, 32 bytes long" },
        ];
        f(&keys)
    }

    fn check(settings: &TokenSettings<'_>, token: &str) -> Result<Claims, TokenError> {
        with_keys(|keys| verify(settings, keys, token.as_bytes()))
    }

    fn b64(json: &str) -> String {
        URL_SAFE_NO_PAD.encode(json)
    }

    /// Signs arbitrary header and claims JSON with HS256 and `secret`.
    fn hmac_signed(secret: &[u8], header: &str, claims: &str) -> String {
        use hmac::{Hmac, Mac};
        let message = format!("{}.{}", b64(header), b64(claims));
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
        mac.update(message.as_bytes());
        format!("{message}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }

    /// Signs arbitrary header and claims JSON with Ed25519 and `seed`.
    fn ed_signed(seed: &[u8; 32], header: &str, claims: &str) -> String {
        use ed25519_dalek::Signer;
        let message = format!("{}.{}", b64(header), b64(claims));
        let signature = ed25519_dalek::SigningKey::from_bytes(seed).sign(message.as_bytes());
        format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }

    fn good_claims() -> String {
        format!(
            r#"{{"sub":"1","iss":"loom-auth","aud":"loom","iat":{NOW},"exp":{},"jti":"x","client_id":"loom"}}"#,
            NOW + 600
        )
    }

    const ED_HEADER: &str = r#"{"alg":"EdDSA","typ":"at+jwt","kid":"ed-1"}"#;

    fn header_of(token: &str) -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap()).unwrap()
    }

    #[test]
    fn eddsa_and_hs256_round_trip_as_rfc_9068_access_tokens() {
        for key in [ed_signing(), hs_signing()] {
            let (token, claims) = issue(&settings(), &key, "42", "loom-cli", &[]).unwrap();
            let header = header_of(&token);
            assert_eq!(header["typ"], "at+jwt");
            assert_eq!(header["kid"], key.kid.unwrap());
            assert_eq!(header["alg"], key.alg.name());
            assert_eq!(
                (claims.sub.as_str(), claims.aud.as_str(), claims.client_id.as_str()),
                ("42", "loom", "loom-cli")
            );
            assert_eq!((claims.iat, claims.exp), (NOW, NOW + 1800));
            assert_eq!(URL_SAFE_NO_PAD.decode(&claims.jti).unwrap().len(), JTI_BYTES);
            assert_eq!(check(&settings(), &token), Ok(claims));
        }
    }

    #[test]
    fn token_ids_are_random() {
        let (_, a) = issue(&settings(), &ed_signing(), "1", "loom", &[]).unwrap();
        let (_, b) = issue(&settings(), &ed_signing(), "1", "loom", &[]).unwrap();
        assert_ne!(a.jti, b.jti);
    }

    #[test]
    fn extra_claims_travel_but_cannot_replace_standard_ones() {
        let extra = vec![("scope".to_owned(), r#""projects:read""#.to_owned()), ("n".to_owned(), "3".to_owned())];
        let (token, _) = issue(&settings(), &ed_signing(), "1", "loom", &extra).unwrap();
        let mut found = check(&settings(), &token).unwrap().extra;
        found.sort();
        assert_eq!(found, [("n".to_owned(), "3".to_owned()), ("scope".to_owned(), r#""projects:read""#.to_owned())]);
        for bad in [("sub", r#""2""#), ("aud", r#""x""#), ("scope", "not json")] {
            let extra = [(bad.0.to_owned(), bad.1.to_owned())];
            assert_eq!(
                issue(&settings(), &ed_signing(), "1", "loom", &extra).map(|_| ()),
                Err(TokenError::InvalidClaim)
            );
        }
    }

    #[test]
    fn expiry_honours_the_leeway_and_nbf_is_respected() {
        let (token, _) = issue(&settings(), &ed_signing(), "1", "loom", &[]).unwrap();
        let at = |now| TokenSettings { now, ..settings() };
        assert!(check(&at(NOW + 1800 + 5), &token).is_ok());
        assert_eq!(check(&at(NOW + 1800 + 6), &token), Err(TokenError::Expired));
        assert_eq!(check(&at(NOW - 60), &token), Err(TokenError::NotYetValid));
        // Issued up to the leeway in this host's future (another host's clock runs ahead): valid.
        assert!(check(&at(NOW - 5), &token).is_ok());
        assert_eq!(check(&at(NOW - 6), &token), Err(TokenError::NotYetValid));
        let nbf = format!(
            r#"{{"sub":"1","iss":"loom-auth","aud":"loom","iat":{NOW},"exp":{},"jti":"x","client_id":"c","nbf":{}}}"#,
            NOW + 600,
            NOW + 60
        );
        assert_eq!(check(&settings(), &ed_signed(&SEED, ED_HEADER, &nbf)), Err(TokenError::NotYetValid));
    }

    #[test]
    fn another_key_or_tampered_claims_are_a_bad_signature() {
        let other = ed_signed(&[8; 32], ED_HEADER, &good_claims());
        assert_eq!(check(&settings(), &other), Err(TokenError::BadSignature));
        let (token, _) = issue(&settings(), &ed_signing(), "1", "loom", &[]).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let forged =
            format!("{}.{}.{}", parts[0], b64(&good_claims().replace(r#""sub":"1""#, r#""sub":"2""#)), parts[2]);
        assert_eq!(check(&settings(), &forged), Err(TokenError::BadSignature));
        assert_eq!(check(&settings(), &ed_signed(&SEED, ED_HEADER, &good_claims())).unwrap().sub, "1");
    }

    #[test]
    fn keys_are_found_by_kid_in_the_hosts_set_only() {
        let unknown = ed_signed(&SEED, r#"{"alg":"EdDSA","typ":"at+jwt","kid":"ed-9"}"#, &good_claims());
        assert_eq!(check(&settings(), &unknown), Err(TokenError::UnknownKey));
        // No kid: only the legacy key could have signed it, and it is HS256.
        let no_kid = ed_signed(&SEED, r#"{"alg":"EdDSA","typ":"at+jwt"}"#, &good_claims());
        assert_eq!(check(&settings(), &no_kid), Err(TokenError::AlgorithmNotAllowed));
        let only_current = |token: &str| {
            let public = ed_public();
            let keys = [VerificationKey { kid: Some("ed-1"), alg: Algorithm::EdDsa, material: &public }];
            verify(&settings(), &keys, token.as_bytes())
        };
        assert_eq!(only_current(&no_kid), Err(TokenError::UnknownKey));
        // A key URL or an embedded key in the header is never used: the attacker's signature fails.
        for header in [
            r#"{"alg":"EdDSA","typ":"at+jwt","kid":"ed-1","jku":"http://127.0.0.1:1/jwks.json"}"#,
            r#"{"alg":"EdDSA","typ":"at+jwt","kid":"ed-1","x5u":"http://127.0.0.1:1/cert.pem"}"#,
        ] {
            assert_eq!(check(&settings(), &ed_signed(&[9; 32], header, &good_claims())), Err(TokenError::BadSignature));
            assert!(check(&settings(), &ed_signed(&SEED, header, &good_claims())).is_ok(), "{header}");
        }
    }

    #[test]
    fn the_algorithm_is_the_keys_never_the_headers() {
        // Algorithm confusion: the EdDSA key's public half used as an HMAC secret.
        let confused = hmac_signed(&ed_public(), r#"{"alg":"HS256","typ":"at+jwt","kid":"ed-1"}"#, &good_claims());
        assert_eq!(check(&settings(), &confused), Err(TokenError::AlgorithmNotAllowed));
        for alg in ["none", "None", "HS512", "RS256", "ES256"] {
            let header = format!(r#"{{"alg":"{alg}","typ":"at+jwt","kid":"ed-1"}}"#);
            let token = format!("{}.{}.c2ln", b64(&header), b64(&good_claims()));
            assert_eq!(check(&settings(), &token), Err(TokenError::AlgorithmNotAllowed), "{alg}");
        }
    }

    #[test]
    fn the_type_and_audience_are_required() {
        for header in [r#"{"alg":"EdDSA","kid":"ed-1"}"#, r#"{"alg":"EdDSA","typ":"JWT","kid":"ed-1"}"#] {
            assert_eq!(check(&settings(), &ed_signed(&SEED, header, &good_claims())), Err(TokenError::WrongType));
        }
        let media_type = r#"{"alg":"EdDSA","typ":"application/at+jwt","kid":"ed-1"}"#;
        assert!(check(&settings(), &ed_signed(&SEED, media_type, &good_claims())).is_ok());
        let elsewhere = good_claims().replace(r#""aud":"loom""#, r#""aud":"billing""#);
        assert_eq!(check(&settings(), &ed_signed(&SEED, ED_HEADER, &elsewhere)), Err(TokenError::WrongAudience));
        let no_aud = good_claims().replace(r#""aud":"loom","#, "");
        assert_eq!(check(&settings(), &ed_signed(&SEED, ED_HEADER, &no_aud)), Err(TokenError::WrongAudience));
        let several = good_claims().replace(r#""aud":"loom""#, r#""aud":["billing","loom"]"#);
        assert!(check(&settings(), &ed_signed(&SEED, ED_HEADER, &several)).is_ok());
        let none_ours = good_claims().replace(r#""aud":"loom""#, r#""aud":["billing","ci"]"#);
        assert_eq!(check(&settings(), &ed_signed(&SEED, ED_HEADER, &none_ours)), Err(TokenError::WrongAudience));
        let no_client = good_claims().replace(r#","client_id":"loom""#, "");
        assert_eq!(check(&settings(), &ed_signed(&SEED, ED_HEADER, &no_client)), Err(TokenError::MissingClaim));
    }

    #[test]
    fn legacy_tokens_verify_with_the_legacy_key_as_they_were_issued() {
        // What 0.1 issued: HS256, typ JWT, no kid, no aud, no client_id.
        let old = format!(r#"{{"sub":"7","iss":"loom-auth","iat":{NOW},"exp":{},"jti":"j"}}"#, NOW + 600);
        let token = hmac_signed(b"the legacy secret, 32 bytes long", r#"{"alg":"HS256","typ":"JWT"}"#, &old);
        let claims = check(&settings(), &token).unwrap();
        assert_eq!((claims.sub.as_str(), claims.kid.as_deref(), claims.aud.as_str()), ("7", None, ""));
        let forged = hmac_signed(SECRET, r#"{"alg":"HS256","typ":"JWT"}"#, &old);
        assert_eq!(check(&settings(), &forged), Err(TokenError::BadSignature));
    }

    #[test]
    fn wrong_or_missing_issuer_and_missing_claims_are_refused() {
        let (token, _) =
            issue(&TokenSettings { issuer: "someone-else", ..settings() }, &ed_signing(), "1", "c", &[]).unwrap();
        assert_eq!(check(&settings(), &token), Err(TokenError::WrongIssuer));
        let no_iss = good_claims().replace(r#""iss":"loom-auth","#, "");
        assert_eq!(check(&settings(), &ed_signed(&SEED, ED_HEADER, &no_iss)), Err(TokenError::WrongIssuer));
        for missing in [r#""sub":"1","#, r#""jti":"x","#, r#""iat":1800000000,"#] {
            let claims = good_claims().replace(missing, "");
            assert_eq!(
                check(&settings(), &ed_signed(&SEED, ED_HEADER, &claims)),
                Err(TokenError::MissingClaim),
                "{missing}"
            );
        }
        let empty_sub = good_claims().replace(r#""sub":"1""#, r#""sub":"""#);
        assert_eq!(check(&settings(), &ed_signed(&SEED, ED_HEADER, &empty_sub)), Err(TokenError::MissingClaim));
    }

    #[test]
    fn truncated_garbage_and_non_utf8_tokens_are_malformed() {
        let (token, _) = issue(&settings(), &ed_signing(), "1", "c", &[]).unwrap();
        let (without_signature, _) = token.rsplit_once('.').unwrap();
        for bad in ["", ".", "..", "abc", "a.b.c", without_signature, &token[..token.len() / 2], "bm90IGpzb24.e30.c2ln"]
        {
            let result = check(&settings(), bad);
            assert!(matches!(result, Err(TokenError::Malformed | TokenError::BadSignature)), "{bad:?} gave {result:?}");
        }
        assert_eq!(with_keys(|keys| verify(&settings(), keys, b"\xff\xfe.\x80.\xc3")), Err(TokenError::Malformed));
    }

    #[test]
    fn unusable_keys_are_refused() {
        let short = SigningKey { kid: Some("k"), alg: Algorithm::Hs256, private: b"short" };
        assert_eq!(issue(&settings(), &short, "1", "c", &[]).map(|_| ()), Err(TokenError::InvalidKey));
        let bad_seed = SigningKey { kid: Some("k"), alg: Algorithm::EdDsa, private: &[1; 31] };
        assert_eq!(issue(&settings(), &bad_seed, "1", "c", &[]).map(|_| ()), Err(TokenError::InvalidKey));
        let token = ed_signed(&SEED, ED_HEADER, &good_claims());
        let keys = [VerificationKey { kid: Some("ed-1"), alg: Algorithm::EdDsa, material: &[1; 16] }];
        assert_eq!(verify(&settings(), &keys, token.as_bytes()), Err(TokenError::InvalidKey));
        // An HS256 secret shorter than 32 bytes verifies nothing, even a token it signed.
        let signed = hmac_signed(b"short", r#"{"alg":"HS256","typ":"at+jwt","kid":"hs-short"}"#, &good_claims());
        let keys = [VerificationKey { kid: Some("hs-short"), alg: Algorithm::Hs256, material: b"short" }];
        assert_eq!(verify(&settings(), &keys, signed.as_bytes()), Err(TokenError::InvalidKey));
    }
}
