//! The host's token settings: the signing key and what goes with it, handed to
//! the component on each call together with the current time.

use std::time::{SystemTime, UNIX_EPOCH};

use secrecy::{ExposeSecret, SecretSlice};

use crate::runtime::{KeyedSettings, TokenSettings};

pub struct TokenConfig {
    pub signing_key: SecretSlice<u8>,
    pub issuer: String,
    pub ttl_seconds: u32,
    pub leeway_seconds: u32,
}

impl TokenConfig {
    /// The settings for a token operation now.
    pub fn settings(&self) -> KeyedSettings {
        KeyedSettings::new(TokenSettings {
            signing_key: self.signing_key.expose_secret().to_vec(),
            issuer: self.issuer.clone(),
            now: unix_now(),
            ttl_seconds: self.ttl_seconds,
            leeway_seconds: self.leeway_seconds,
        })
    }
}

/// Seconds since the Unix epoch, by the host's clock.
pub fn unix_now() -> i64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    i64::try_from(now).unwrap_or(i64::MAX)
}
