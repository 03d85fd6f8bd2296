//! What a token operation takes to the component: the settings and the keys. The key
//! material in them is redacted in `Debug` and wiped from memory when dropped.

use sha2::{Digest, Sha256};

use super::{Algorithm, SigningKey, TokenSettings, VerificationKey};

/// [`TokenSettings`] with the key to sign with and the keys to verify with (for an
/// asymmetric key only its public half): `Debug` hides the keys, and they are wiped from
/// memory when dropped.
#[derive(Clone)]
pub struct KeyedSettings {
    pub settings: TokenSettings,
    /// `None` when no usable key may sign (then nothing is issued).
    pub signing: Option<SigningKey>,
    pub verifying: Vec<VerificationKey>,
}

impl KeyedSettings {
    /// A digest of everything a verdict on a token depends on besides the component and the
    /// clock: issuer, audience, leeway and every verification key. Two settings with the same
    /// digest accept the same tokens.
    pub fn verdict_digest(&self) -> [u8; 32] {
        let mut digest = Sha256::new();
        let mut part = |bytes: &[u8]| {
            digest.update((bytes.len() as u64).to_le_bytes());
            digest.update(bytes);
        };
        part(self.settings.issuer.as_bytes());
        part(self.settings.audience.as_bytes());
        part(&self.settings.leeway_seconds.to_le_bytes());
        for key in &self.verifying {
            part(key.kid.as_deref().unwrap_or_default().as_bytes());
            part(&[u8::from(key.kid.is_some()), algorithm_code(key.alg)]);
            part(&key.material);
        }
        digest.finalize().into()
    }
}

fn algorithm_code(alg: Algorithm) -> u8 {
    match alg {
        Algorithm::Hs256 => 1,
        Algorithm::Eddsa => 2,
    }
}

impl std::ops::Deref for KeyedSettings {
    type Target = TokenSettings;
    fn deref(&self) -> &TokenSettings {
        &self.settings
    }
}

impl Drop for KeyedSettings {
    fn drop(&mut self) {
        if let Some(signing) = &mut self.signing {
            zeroize::Zeroize::zeroize(&mut signing.private);
        }
        for key in &mut self.verifying {
            zeroize::Zeroize::zeroize(&mut key.material);
        }
    }
}

impl std::fmt::Debug for KeyedSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<_> = self.verifying.iter().map(|key| key.kid.as_deref().unwrap_or("(legacy)")).collect();
        f.debug_struct("KeyedSettings")
            .field("signing_kid", &self.signing.as_ref().map(|key| &key.kid))
            .field("verifying_kids", &kids)
            .field("issuer", &self.settings.issuer)
            .field("audience", &self.settings.audience)
            .field("now", &self.settings.now)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyed() -> KeyedSettings {
        let secret = b"super-secret-signing-key-bytes!!".to_vec();
        KeyedSettings {
            settings: TokenSettings {
                issuer: "loom-auth".into(),
                audience: "loom".into(),
                now: 1,
                ttl_seconds: 60,
                leeway_seconds: 5,
            },
            signing: Some(SigningKey { kid: Some("k1".into()), alg: Algorithm::Hs256, private: secret.clone() }),
            verifying: vec![VerificationKey { kid: Some("k1".into()), alg: Algorithm::Hs256, material: secret }],
        }
    }

    #[test]
    fn keyed_settings_never_show_the_keys() {
        let shown = format!("{:?}", keyed());
        assert!(!shown.contains("super-secret") && !shown.contains("115, 117"), "{shown}");
        assert!(shown.contains("k1") && shown.contains("loom-auth"), "{shown}");
    }

    #[test]
    fn the_verdict_digest_follows_what_verification_depends_on() {
        let base = keyed().verdict_digest();
        assert_eq!(keyed().verdict_digest(), base);
        let mut later = keyed();
        later.settings.now = 99;
        assert_eq!(later.verdict_digest(), base, "the clock is not part of it");
        let changes: [fn(&mut KeyedSettings); 5] = [
            |k| k.settings.issuer = "x".into(),
            |k| k.settings.audience = "x".into(),
            |k| k.settings.leeway_seconds = 6,
            |k| k.verifying[0].kid = Some("k2".into()),
            |k| k.verifying[0].material[0] ^= 1,
        ];
        for change in changes {
            let mut changed = keyed();
            change(&mut changed);
            assert_ne!(changed.verdict_digest(), base);
        }
    }
}
