//! Tokens the serving component has accepted, remembered until they expire, so
//! a client presenting the same token again (the common case: a CLI or service
//! calls many times with one token) skips the component call.
//!
//! Only successes are remembered, keyed by the token's SHA-256 (the cache never
//! holds a token itself), with a digest of everything else the verdict rests on
//! but the clock: the component that made it and the settings it was given
//! (key, issuer, leeway). An entry made under anything else is a miss, so
//! neither a swap nor a key change can serve a verdict nobody made under them,
//! even for a check that raced the change. An entry holds from the time it was
//! made until the token's `exp` plus the leeway, exactly as long as the
//! component would accept the token, and the cache is bounded in entries. What the
//! cache does not decide: revocation and the account's state, which the caller
//! reads from the database on every request.

use std::time::{Duration, Instant};

use moka::Expiry;
use moka::sync::Cache;
use sha2::{Digest, Sha256};

use super::{Claims, KeyedSettings};

/// Tokens remembered at most; a full cache evicts the least used.
pub const CAPACITY: u64 = 10_000;

/// One token check, as the cache sees it.
pub struct Check {
    /// SHA-256 of the token.
    key: [u8; 32],
    /// SHA-256 of the component's digest and the verification keys and settings but the clock.
    context: [u8; 32],
    now: i64,
    leeway_seconds: u32,
}

impl Check {
    pub fn new(component: &str, settings: &KeyedSettings, token: &[u8]) -> Self {
        let mut context = Sha256::new();
        context.update((component.len() as u64).to_le_bytes());
        context.update(component.as_bytes());
        context.update(settings.verdict_digest());
        Self {
            key: Sha256::digest(token).into(),
            context: context.finalize().into(),
            now: settings.now,
            leeway_seconds: settings.leeway_seconds,
        }
    }
}

/// A successful check: what it found, under what, and when it holds.
#[derive(Clone)]
struct Accepted {
    claims: Claims,
    context: [u8; 32],
    /// The Unix second the check was made: earlier clocks are not vouched for.
    checked_at: i64,
    /// The last Unix second the component would accept the token (`exp` + leeway).
    valid_until: i64,
    lifetime: Duration,
}

/// Successful token checks, keyed by the token's SHA-256.
pub struct VerifiedTokens {
    entries: Cache<[u8; 32], Accepted>,
}

impl VerifiedTokens {
    pub fn new(capacity: u64) -> Self {
        Self { entries: Cache::builder().max_capacity(capacity).expire_after(UntilExpiry).build() }
    }

    /// The claims of a check made before under the same component and settings
    /// that still holds at `check`'s time.
    pub fn get(&self, check: &Check) -> Option<Claims> {
        let found = self.entries.get(&check.key)?;
        let holds = found.context == check.context && (found.checked_at..=found.valid_until).contains(&check.now);
        holds.then_some(found.claims)
    }

    /// Remembers that `check` succeeded, finding `claims`.
    pub fn insert(&self, check: &Check, claims: &Claims) {
        let valid_until = claims.exp.saturating_add(i64::from(check.leeway_seconds));
        let Ok(seconds) = u64::try_from(valid_until.saturating_sub(check.now)) else {
            return; // accepted in its last second: not worth keeping
        };
        let accepted = Accepted {
            claims: claims.clone(),
            context: check.context,
            checked_at: check.now,
            valid_until,
            lifetime: Duration::from_secs(seconds),
        };
        self.entries.insert(check.key, accepted);
    }

    /// Forgets every check: after a swap or a key change.
    pub fn clear(&self) {
        self.entries.invalidate_all();
    }
}

/// Each entry leaves the cache when its token stops being valid.
struct UntilExpiry;

impl Expiry<[u8; 32], Accepted> for UntilExpiry {
    fn expire_after_create(&self, _: &[u8; 32], accepted: &Accepted, _: Instant) -> Option<Duration> {
        Some(accepted.lifetime)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::runtime::{Algorithm, SigningKey, TokenSettings, VerificationKey};

    fn settings(now: i64) -> KeyedSettings {
        KeyedSettings {
            settings: TokenSettings {
                issuer: "loom-auth".into(),
                audience: "loom".into(),
                now,
                ttl_seconds: 60,
                leeway_seconds: 5,
            },
            signing: Some(SigningKey { kid: Some("k".into()), alg: Algorithm::Hs256, private: vec![7; 32] }),
            verifying: vec![VerificationKey { kid: Some("k".into()), alg: Algorithm::Hs256, material: vec![7; 32] }],
        }
    }

    fn claims(exp: i64) -> Claims {
        Claims {
            sub: "1".into(),
            iss: "loom-auth".into(),
            aud: "loom".into(),
            iat: exp - 60,
            exp,
            jti: "j".into(),
            client_id: "loom".into(),
            kid: Some("k".into()),
            extra: Vec::new(),
        }
    }

    fn found(cache: &VerifiedTokens, component: &str, settings: &KeyedSettings) -> bool {
        cache.get(&Check::new(component, settings, b"token")).is_some()
    }

    #[test]
    fn a_remembered_check_holds_from_when_it_was_made_until_expiry_plus_leeway() {
        let cache = VerifiedTokens::new(CAPACITY);
        cache.insert(&Check::new("digest-a", &settings(1_000), b"token"), &claims(1_060));
        assert_eq!(cache.get(&Check::new("digest-a", &settings(1_065), b"token")).map(|c| c.jti), Some("j".into()));
        assert!(!found(&cache, "digest-a", &settings(1_066)), "past exp + leeway");
        assert!(!found(&cache, "digest-a", &settings(999)), "a clock set back before the check");
        assert!(cache.get(&Check::new("digest-a", &settings(1_000), b"other")).is_none());
    }

    #[test]
    fn only_the_component_and_settings_that_accepted_a_token_find_it() {
        let cache = VerifiedTokens::new(CAPACITY);
        cache.insert(&Check::new("digest-a", &settings(1_000), b"token"), &claims(1_060));
        assert!(found(&cache, "digest-a", &settings(1_000)));
        assert!(!found(&cache, "digest-b", &settings(1_000)), "another component");
        let changed = |change: fn(&mut KeyedSettings)| {
            let mut settings = settings(1_000);
            change(&mut settings);
            settings
        };
        assert!(!found(&cache, "digest-a", &changed(|s| s.verifying[0].material = vec![8; 32])), "key");
        assert!(!found(&cache, "digest-a", &changed(|s| s.verifying.clear())), "key retired");
        assert!(!found(&cache, "digest-a", &changed(|s| s.settings.issuer = "x".into())), "issuer");
        assert!(!found(&cache, "digest-a", &changed(|s| s.settings.audience = "x".into())), "audience");
        assert!(!found(&cache, "digest-a", &changed(|s| s.settings.leeway_seconds = 50)), "leeway");
        cache.clear();
        assert!(!found(&cache, "digest-a", &settings(1_000)), "cleared");
    }

    #[test]
    fn a_token_past_its_validity_is_not_kept() {
        let cache = VerifiedTokens::new(CAPACITY);
        cache.insert(&Check::new("digest-a", &settings(2_000), b"token"), &claims(1_060));
        cache.entries.run_pending_tasks();
        assert_eq!(cache.entries.entry_count(), 0);
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = VerifiedTokens::new(10);
        for n in 0..100u32 {
            cache.insert(&Check::new("digest-a", &settings(1_000), &n.to_be_bytes()), &claims(1_060));
        }
        cache.entries.run_pending_tasks();
        assert!(cache.entries.entry_count() <= 10, "{}", cache.entries.entry_count());
    }
}
