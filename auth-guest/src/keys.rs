//! Signing keys: made here, kept (encrypted) by the host, described to the world as JWKs.
//!
//! The host needs no cryptography of its own: it asks the component for fresh key material,
//! for the public half of an asymmetric key (what verification gets), and for its public JWK
//! (what `/.well-known/jwks.json` publishes).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

/// Bytes of an HS256 secret this component makes, and of an Ed25519 private key (its seed).
pub const KEY_BYTES: usize = 32;

/// The signing algorithms the component speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// HMAC-SHA256: one secret signs and verifies. Only for the legacy key and for setups
    /// where every verifier may also sign.
    Hs256,
    /// Ed25519 signatures (RFC 8037): verifiers need only the public half.
    EdDsa,
}

impl Algorithm {
    /// The JOSE name (`alg`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Hs256 => "HS256",
            Self::EdDsa => "EdDSA",
        }
    }

    pub(crate) fn jsonwebtoken(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::Hs256 => jsonwebtoken::Algorithm::HS256,
            Self::EdDsa => jsonwebtoken::Algorithm::EdDSA,
        }
    }
}

/// Why key material could not be made or described.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the algorithm has no public key")]
    NoPublicKey,
    #[error("the key material is unusable")]
    InvalidKey,
    #[error("no randomness")]
    Internal,
}

/// Fresh key material for `alg`: an HS256 secret or an Ed25519 seed, 32 random bytes either way.
pub fn generate(alg: Algorithm) -> Result<Vec<u8>, KeyError> {
    let _ = alg;
    let mut key = vec![0u8; KEY_BYTES];
    getrandom::fill(&mut key).map_err(|_| KeyError::Internal)?;
    Ok(key)
}

/// The Ed25519 signing key of a 32-byte seed.
pub(crate) fn ed25519(private: &[u8]) -> Result<ed25519_dalek::SigningKey, KeyError> {
    let seed: &[u8; KEY_BYTES] = private.try_into().map_err(|_| KeyError::InvalidKey)?;
    Ok(ed25519_dalek::SigningKey::from_bytes(seed))
}

/// The public half of an asymmetric key, as verification takes it (Ed25519: 32 bytes).
/// HS256 has none: its one secret both signs and verifies.
pub fn public_key(alg: Algorithm, private: &[u8]) -> Result<Vec<u8>, KeyError> {
    match alg {
        Algorithm::Hs256 => Err(KeyError::NoPublicKey),
        Algorithm::EdDsa => Ok(ed25519(private)?.verifying_key().to_bytes().to_vec()),
    }
}

/// The public JWK (RFC 7517, RFC 8037) of an asymmetric key, as JSON text.
pub fn public_jwk(alg: Algorithm, private: &[u8], kid: &str) -> Result<String, KeyError> {
    let public = public_key(alg, private)?;
    let jwk = json!({
        "kty": "OKP",
        "crv": "Ed25519",
        "x": URL_SAFE_NO_PAD.encode(public),
        "kid": kid,
        "alg": alg.name(),
        "use": "sig",
    });
    Ok(jwk.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_and_32_bytes() {
        for alg in [Algorithm::Hs256, Algorithm::EdDsa] {
            let (a, b) = (generate(alg).unwrap(), generate(alg).unwrap());
            assert_eq!((a.len(), b.len()), (32, 32));
            assert_ne!(a, b);
        }
    }

    #[test]
    fn an_ed25519_jwk_holds_the_public_half_only() {
        let private = generate(Algorithm::EdDsa).unwrap();
        let jwk: serde_json::Value =
            serde_json::from_str(&public_jwk(Algorithm::EdDsa, &private, "k1").unwrap()).unwrap();
        assert_eq!(jwk["kty"], "OKP");
        assert_eq!(jwk["crv"], "Ed25519");
        assert_eq!(jwk["kid"], "k1");
        assert_eq!(jwk["alg"], "EdDSA");
        assert_eq!(jwk["use"], "sig");
        let x = URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap();
        assert_eq!(x, public_key(Algorithm::EdDsa, &private).unwrap());
        assert_ne!(x, private);
        assert_eq!(jwk.as_object().unwrap().len(), 6, "nothing else: {jwk}");
    }

    #[test]
    fn hs256_has_no_public_half_and_bad_seeds_are_refused() {
        assert_eq!(public_key(Algorithm::Hs256, &[7; 32]), Err(KeyError::NoPublicKey));
        assert_eq!(public_jwk(Algorithm::Hs256, &[7; 32], "k"), Err(KeyError::NoPublicKey));
        assert_eq!(public_key(Algorithm::EdDsa, &[7; 31]), Err(KeyError::InvalidKey));
    }
}
