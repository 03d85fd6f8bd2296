//! The token signing keys every host on a database shares: kept in the store with their
//! private halves sealed under the master key ([`seal`]), made and described by the
//! component, and held in memory as a [`KeyRing`] that follows the database within
//! [`REFRESH_EVERY`] (at once on SIGHUP).
//!
//! One key is active and signs; the keys before it verify until they are retired. The
//! legacy key, the pre-0.2 HS256 secret imported once from the data directory, verifies the
//! tokens issued before the upgrade (they carry no `kid`) until it is retired.

pub mod seal;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretSlice};
use serde_json::Value;
use tokio::sync::Notify;

use crate::runtime::{Algorithm, Runtime, RuntimeError, SigningKey, VerificationKey};
use crate::store::{KeyState, StoreError, StoredKey, UserStore};
use seal::{SealError, Sealer};

/// How often a host reads the keys again.
pub const REFRESH_EVERY: Duration = Duration::from_secs(5);

/// The name the legacy key is stored under (its tokens carry no `kid` at all).
pub const LEGACY_KID: &str = "legacy";

#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot open the signing key {kid}: {source}")]
    Seal { kid: String, source: SealError },
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("the database has no active signing key")]
    NoActiveKey,
    #[error("the signing key {kid} is unusable: {reason}")]
    Unusable { kid: String, reason: String },
}

/// The keys in memory: the one that signs, those that verify, and what `/.well-known/jwks.json`
/// publishes.
pub struct KeyRing {
    pub signing: SigningKey,
    pub verifying: Vec<VerificationKey>,
    /// The public JWKs of the asymmetric keys that verify.
    pub jwks: Vec<Value>,
    /// Which keys, in which states: a change to it is a change to the ring.
    fingerprint: String,
}

impl Drop for KeyRing {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.signing.private);
        for key in &mut self.verifying {
            zeroize::Zeroize::zeroize(&mut key.material);
        }
    }
}

/// The wire form of an algorithm name as stored.
fn algorithm(name: &str, kid: &str) -> Result<Algorithm, KeyringError> {
    match name {
        "HS256" => Ok(Algorithm::Hs256),
        "EdDSA" => Ok(Algorithm::Eddsa),
        other => Err(KeyringError::Unusable { kid: kid.into(), reason: format!("unknown algorithm {other:?}") }),
    }
}

pub fn algorithm_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::Hs256 => "HS256",
        Algorithm::Eddsa => "EdDSA",
    }
}

fn fingerprint(keys: &[StoredKey]) -> String {
    keys.iter().map(|key| format!("{}:{};", key.kid, key.state.as_str())).collect()
}

impl KeyRing {
    /// The ring the stored `keys` make: private halves opened only where they are needed
    /// (the active key; HS256 keys, whose secret is what verifies).
    pub fn from_stored(keys: &[StoredKey], sealer: &Sealer) -> Result<Self, KeyringError> {
        let mut signing = None;
        let (mut verifying, mut jwks) = (Vec::new(), Vec::new());
        for key in keys.iter().filter(|key| key.state != KeyState::Retired) {
            let alg = algorithm(&key.algorithm, &key.kid)?;
            let kid = (!key.legacy).then(|| key.kid.clone());
            let open = || {
                sealer
                    .open(&key.kid, &key.algorithm, &key.sealed_private)
                    .map_err(|source| KeyringError::Seal { kid: key.kid.clone(), source })
            };
            if key.state == KeyState::Active {
                signing = Some(SigningKey { kid: kid.clone(), alg, private: open()?.to_vec() });
            }
            let material = match alg {
                Algorithm::Hs256 => open()?.to_vec(),
                Algorithm::Eddsa => {
                    let unusable =
                        |reason: &str| KeyringError::Unusable { kid: key.kid.clone(), reason: reason.into() };
                    let jwk: Value = serde_json::from_str(key.public_jwk.as_deref().ok_or_else(|| unusable("no JWK"))?)
                        .map_err(|_| unusable("its JWK is not JSON"))?;
                    let x = jwk["x"].as_str().ok_or_else(|| unusable("its JWK has no x"))?;
                    let public = URL_SAFE_NO_PAD.decode(x).map_err(|_| unusable("its JWK's x is not base64url"))?;
                    jwks.push(jwk);
                    public
                }
            };
            verifying.push(VerificationKey { kid, alg, material });
        }
        let signing = signing.ok_or(KeyringError::NoActiveKey)?;
        Ok(Self { signing, verifying, jwks, fingerprint: fingerprint(keys) })
    }
}

/// A fresh key for `alg`, made by the component and sealed, ready to store.
pub async fn new_key(
    sealer: &Sealer,
    runtime: &Runtime,
    alg: Algorithm,
    state: KeyState,
    now: i64,
) -> Result<StoredKey, KeyringError> {
    let kid = new_kid(now)?;
    let private = runtime.generate_key(alg).await?;
    let public_jwk = match alg {
        Algorithm::Hs256 => None,
        Algorithm::Eddsa => Some(runtime.public_jwk(alg, &private, &kid).await?),
    };
    let name = algorithm_name(alg);
    let sealed_private =
        sealer.seal(&kid, name, &private).map_err(|source| KeyringError::Seal { kid: kid.clone(), source })?;
    Ok(StoredKey { kid, algorithm: name.into(), state, sealed_private, public_jwk, legacy: false, created_at: now })
}

/// A key id: the day it was made and 8 random hex digits (`2026-11-26-3f9a1c2b`).
fn new_kid(now: i64) -> Result<String, KeyringError> {
    let mut random = [0u8; 4];
    getrandom::fill(&mut random).map_err(|_| KeyringError::Seal { kid: "(new)".into(), source: SealError::Random })?;
    let day = std::time::UNIX_EPOCH + Duration::from_secs(u64::try_from(now).unwrap_or(0));
    let day = humantime::format_rfc3339_seconds(day).to_string();
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("{}-{hex}", &day[..10]))
}

/// Makes sure the database has what a host needs: the legacy secret imported (once, when the
/// data directory has one) and an active key (EdDSA, made by the component). Safe when
/// several hosts start at once: the first insert wins and the others use it.
pub async fn ensure(
    store: &UserStore,
    sealer: &Sealer,
    runtime: &Runtime,
    legacy: Option<SecretSlice<u8>>,
    now: i64,
) -> Result<(), KeyringError> {
    let keys = store.signing_keys().await?;
    if let Some(secret) = legacy
        && !keys.iter().any(|key| key.legacy)
    {
        let sealed = sealer
            .seal(LEGACY_KID, "HS256", secret.expose_secret())
            .map_err(|source| KeyringError::Seal { kid: LEGACY_KID.into(), source })?;
        let key = StoredKey {
            kid: LEGACY_KID.into(),
            algorithm: "HS256".into(),
            state: KeyState::Verifying,
            sealed_private: sealed,
            public_jwk: None,
            legacy: true,
            created_at: now,
        };
        if store.insert_signing_key(&key).await? {
            tracing::info!("imported the token secret from before 0.2 as the legacy key: its tokens stay valid");
        }
    }
    if !keys.iter().any(|key| key.state == KeyState::Active) {
        let key = new_key(sealer, runtime, Algorithm::Eddsa, KeyState::Active, now).await?;
        if store.insert_signing_key(&key).await? {
            tracing::info!(kid = %key.kid, "made the first signing key (EdDSA)");
        }
    }
    Ok(())
}

/// The keys in memory, swapped whole when the database's change.
pub struct Keys {
    store: UserStore,
    sealer: Sealer,
    ring: arc_swap::ArcSwap<KeyRing>,
    /// Wakes the refresh loop at once (SIGHUP).
    pub nudge: Notify,
}

impl Keys {
    /// Reads the keys from the store.
    pub async fn load(store: UserStore, sealer: Sealer) -> Result<Arc<Self>, KeyringError> {
        let ring = KeyRing::from_stored(&store.signing_keys().await?, &sealer)?;
        Ok(Arc::new(Self { store, sealer, ring: arc_swap::ArcSwap::from_pointee(ring), nudge: Notify::new() }))
    }

    pub fn ring(&self) -> Arc<KeyRing> {
        self.ring.load_full()
    }

    pub fn sealer(&self) -> &Sealer {
        &self.sealer
    }

    /// Reads the keys again; whether they changed. A key that cannot be opened keeps the
    /// ring as it was (and says so).
    pub async fn refresh(&self) -> Result<bool, KeyringError> {
        let stored = self.store.signing_keys().await?;
        if fingerprint(&stored) == self.ring.load().fingerprint {
            return Ok(false);
        }
        let ring = KeyRing::from_stored(&stored, &self.sealer)?;
        crate::telemetry::audit::record(crate::telemetry::audit::Event::KeysChanged {
            signing: ring.signing.kid.as_deref().unwrap_or(LEGACY_KID),
            verifying: ring.verifying.len(),
        });
        self.ring.store(Arc::new(ring));
        Ok(true)
    }

    /// Follows the database: every [`REFRESH_EVERY`], or at once when nudged; on a change,
    /// forgets every remembered token check.
    pub fn spawn_refresh(self: &Arc<Self>, runtime: Arc<Runtime>) {
        let keys = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let Some(strong) = keys.upgrade() else { return };
                tokio::select! {
                    () = tokio::time::sleep(REFRESH_EVERY) => {}
                    () = strong.nudge.notified() => {}
                }
                match strong.refresh().await {
                    Ok(true) => runtime.forget_verified_tokens(),
                    Ok(false) => {}
                    Err(error) => tracing::warn!(%error, "could not read the signing keys; keeping the ones in memory"),
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: [u8; 32] = [7; 32];

    fn sealer() -> Sealer {
        Sealer::new(&SecretSlice::from(vec![1u8; 32]))
    }

    fn stored(kid: &str, algorithm: &str, state: KeyState, private: &[u8], public_jwk: Option<String>) -> StoredKey {
        StoredKey {
            kid: kid.into(),
            algorithm: algorithm.into(),
            state,
            sealed_private: sealer().seal(kid, algorithm, private).unwrap(),
            public_jwk,
            legacy: kid == LEGACY_KID,
            created_at: 1,
        }
    }

    fn eddsa(kid: &str, state: KeyState) -> StoredKey {
        let jwk = auth_guest::keys::public_jwk(auth_guest::keys::Algorithm::EdDsa, &SEED, kid).unwrap();
        stored(kid, "EdDSA", state, &SEED, Some(jwk))
    }

    #[test]
    fn verification_gets_the_public_half_of_an_eddsa_key_never_its_private_one() {
        let ring = KeyRing::from_stored(&[eddsa("k1", KeyState::Active)], &sealer()).unwrap();
        let public = auth_guest::keys::public_key(auth_guest::keys::Algorithm::EdDsa, &SEED).unwrap();
        assert_eq!(ring.verifying.len(), 1);
        assert_eq!(ring.verifying[0].material, public);
        assert_ne!(ring.verifying[0].material, SEED.to_vec());
        assert_eq!(ring.signing.private, SEED.to_vec(), "only the signing key is opened");
        assert_eq!(ring.jwks.len(), 1);
    }

    #[test]
    fn the_ring_signs_with_the_active_key_and_verifies_with_all_but_retired_ones() {
        let keys = [
            stored(LEGACY_KID, "HS256", KeyState::Verifying, &[9; 32], None),
            eddsa("k1", KeyState::Retired),
            eddsa("k2", KeyState::Verifying),
            eddsa("k3", KeyState::Active),
        ];
        let ring = KeyRing::from_stored(&keys, &sealer()).unwrap();
        assert_eq!(ring.signing.kid.as_deref(), Some("k3"));
        let kids: Vec<_> = ring.verifying.iter().map(|k| k.kid.clone()).collect();
        assert_eq!(kids, [None, Some("k2".into()), Some("k3".into())], "the legacy key has no kid; k1 is retired");
        assert_eq!(ring.verifying[0].material, vec![9; 32], "an HS256 key verifies with its secret");
        assert_eq!(ring.jwks.len(), 2, "the legacy secret is never published");
    }

    #[test]
    fn no_active_key_or_another_master_key_is_an_error() {
        assert!(matches!(
            KeyRing::from_stored(&[eddsa("k1", KeyState::Verifying)], &sealer()),
            Err(KeyringError::NoActiveKey)
        ));
        let other = Sealer::new(&SecretSlice::from(vec![2u8; 32]));
        assert!(matches!(
            KeyRing::from_stored(&[eddsa("k1", KeyState::Active)], &other),
            Err(KeyringError::Seal { .. })
        ));
    }
}
