//! The host's token settings: the keys (from the shared key ring) and what goes with them,
//! handed to the component on each call together with the current time.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::keyring::Keys;
use crate::runtime::{Algorithm, KeyedSettings, SigningKey, TokenSettings, VerificationKey};

pub struct TokenConfig {
    pub keys: Arc<Keys>,
    pub issuer: String,
    /// The `aud` written into tokens and required from them.
    pub audience: String,
    pub ttl_seconds: u32,
    pub leeway_seconds: u32,
}

impl TokenConfig {
    /// The settings and keys for a token operation now.
    pub fn settings(&self) -> KeyedSettings {
        let ring = self.keys.ring();
        KeyedSettings {
            settings: token_settings(&self.issuer, &self.audience, self.ttl_seconds, self.leeway_seconds),
            signing: ring.signing.clone(),
            verifying: ring.verifying.clone(),
        }
    }
}

fn token_settings(issuer: &str, audience: &str, ttl_seconds: u32, leeway_seconds: u32) -> TokenSettings {
    TokenSettings { issuer: issuer.into(), audience: audience.into(), now: unix_now(), ttl_seconds, leeway_seconds }
}

/// Settings with a throwaway HS256 key, for the self-test of the component a host starts
/// with (the key ring needs a component to make its first key).
pub fn bootstrap_settings(issuer: &str, audience: &str) -> Result<KeyedSettings, getrandom::Error> {
    let mut secret = vec![0u8; 32];
    getrandom::fill(&mut secret)?;
    let kid = Some("bootstrap".to_owned());
    Ok(KeyedSettings {
        settings: token_settings(issuer, audience, 60, 0),
        signing: SigningKey { kid: kid.clone(), alg: Algorithm::Hs256, private: secret.clone() },
        verifying: vec![VerificationKey { kid, alg: Algorithm::Hs256, material: secret }],
    })
}

/// Seconds since the Unix epoch, by the host's clock.
pub fn unix_now() -> i64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    i64::try_from(now).unwrap_or(i64::MAX)
}
