//! The host's token settings: the keys and what goes with them, handed to the component on
//! each call together with the current time.

use std::time::{SystemTime, UNIX_EPOCH};

use secrecy::{ExposeSecret, SecretSlice};

use crate::runtime::{Algorithm, KeyedSettings, SigningKey, TokenSettings, VerificationKey};

pub struct TokenConfig {
    /// The HS256 secret from the secret file: the key without a `kid` (see `auth-guest`'s
    /// tokens module), which signs and verifies.
    pub signing_key: SecretSlice<u8>,
    pub issuer: String,
    /// The `aud` written into tokens and required from them.
    pub audience: String,
    pub ttl_seconds: u32,
    pub leeway_seconds: u32,
}

impl TokenConfig {
    /// The settings and keys for a token operation now.
    pub fn settings(&self) -> KeyedSettings {
        let secret = self.signing_key.expose_secret().to_vec();
        KeyedSettings {
            settings: TokenSettings {
                issuer: self.issuer.clone(),
                audience: self.audience.clone(),
                now: unix_now(),
                ttl_seconds: self.ttl_seconds,
                leeway_seconds: self.leeway_seconds,
            },
            signing: SigningKey { kid: None, alg: Algorithm::Hs256, private: secret.clone() },
            verifying: vec![VerificationKey { kid: None, alg: Algorithm::Hs256, material: secret }],
        }
    }
}

/// Seconds since the Unix epoch, by the host's clock.
pub fn unix_now() -> i64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    i64::try_from(now).unwrap_or(i64::MAX)
}
