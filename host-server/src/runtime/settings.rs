//! Token settings as they travel to a call: the signing key copy in them is
//! redacted in `Debug` and wiped from memory when dropped.

use super::TokenSettings;

/// [`TokenSettings`] with a copy of the signing key in them: `Debug` hides the
/// key, and the copy is wiped from memory when dropped.
#[derive(Clone)]
pub struct KeyedSettings(TokenSettings);

impl KeyedSettings {
    pub fn new(settings: TokenSettings) -> Self {
        Self(settings)
    }
}

impl std::ops::Deref for KeyedSettings {
    type Target = TokenSettings;
    fn deref(&self) -> &TokenSettings {
        &self.0
    }
}

impl Drop for KeyedSettings {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0.signing_key);
    }
}

impl std::fmt::Debug for KeyedSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedSettings")
            .field("signing_key", &"[REDACTED]")
            .field("issuer", &self.0.issuer)
            .field("now", &self.0.now)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_settings_never_show_the_key() {
        let settings = KeyedSettings::new(TokenSettings {
            signing_key: b"super-secret-signing-key-bytes!!".to_vec(),
            issuer: "loom-auth".into(),
            now: 1,
            ttl_seconds: 60,
            leeway_seconds: 5,
        });
        let shown = format!("{settings:?}");
        assert!(!shown.contains("super-secret") && !shown.contains("115, 117"), "{shown}");
        assert!(shown.contains("REDACTED") && shown.contains("loom-auth"), "{shown}");
    }
}
