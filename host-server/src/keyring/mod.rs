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
    /// `None` when no usable key may sign (see [`KeyRing::from_stored`]).
    pub signing: Option<SigningKey>,
    pub verifying: Vec<VerificationKey>,
    /// The public JWKs of the asymmetric keys that verify.
    pub jwks: Vec<Value>,
    /// Which keys, in which states, with which content: a change to it is a change to the ring.
    fingerprint: String,
}

impl Drop for KeyRing {
    fn drop(&mut self) {
        if let Some(signing) = &mut self.signing {
            zeroize::Zeroize::zeroize(&mut signing.private);
        }
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

/// Every row's id, state and content: a key whose row changes in place is read again.
fn fingerprint(keys: &[StoredKey]) -> String {
    use sha2::{Digest, Sha256};
    let mut digest = Sha256::new();
    for key in keys {
        for part in [key.kid.as_bytes(), key.state.as_str().as_bytes(), &key.sealed_private] {
            digest.update((part.len() as u64).to_le_bytes());
            digest.update(part);
        }
        digest.update(key.public_jwk.as_deref().unwrap_or_default().as_bytes());
    }
    digest.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Derives an asymmetric key's public JWK from its private half: the component, on a host.
pub trait PublicJwk {
    fn public_jwk(
        &self,
        alg: Algorithm,
        private: &[u8],
        kid: &str,
    ) -> impl std::future::Future<Output = Result<String, RuntimeError>> + Send;
}

impl PublicJwk for Runtime {
    async fn public_jwk(&self, alg: Algorithm, private: &[u8], kid: &str) -> Result<String, RuntimeError> {
        Runtime::public_jwk(self, alg, private, kid).await
    }
}

/// A ring, and the keys left out of it because they cannot be used.
pub struct Loaded {
    pub ring: KeyRing,
    pub unusable: Vec<KeyringError>,
}

impl KeyRing {
    /// The ring the stored `keys` make. Every key that verifies is authenticated: its private
    /// half must open under the master key, and an asymmetric key's public half is derived from
    /// it (never taken from the row), so write access to the database alone adds no key that
    /// verifies. A key that cannot be used is left out, and the rest still apply (a retirement
    /// takes effect whatever else is wrong): fail secure. When the active key is unusable, the
    /// key that signed so far (`previous`) goes on signing if it still verifies; else nothing signs.
    pub async fn from_stored(
        keys: &[StoredKey],
        sealer: &Sealer,
        derive: &impl PublicJwk,
        previous: Option<&SigningKey>,
    ) -> Loaded {
        let mut signing = None;
        let (mut verifying, mut jwks, mut unusable) = (Vec::new(), Vec::new(), Vec::new());
        for key in keys.iter().filter(|key| key.state != KeyState::Retired) {
            match Self::open_one(key, sealer, derive).await {
                Ok((verification, jwk, private)) => {
                    if key.state == KeyState::Active {
                        signing = Some(SigningKey {
                            kid: verification.kid.clone(),
                            alg: verification.alg,
                            private: private.to_vec(),
                        });
                    }
                    jwks.extend(jwk);
                    verifying.push(verification);
                }
                Err(error) => unusable.push(error),
            }
        }
        if signing.is_none() {
            signing = previous.filter(|key| verifying.iter().any(|v| v.kid == key.kid)).cloned();
        }
        Loaded { ring: Self { signing, verifying, jwks, fingerprint: fingerprint(keys) }, unusable }
    }

    /// One stored key, authenticated: what verifies with it, its public JWK (asymmetric keys),
    /// and its private half.
    async fn open_one(
        key: &StoredKey,
        sealer: &Sealer,
        derive: &impl PublicJwk,
    ) -> Result<(VerificationKey, Option<Value>, zeroize::Zeroizing<Vec<u8>>), KeyringError> {
        let alg = algorithm(&key.algorithm, &key.kid)?;
        let unusable = |reason: &str| KeyringError::Unusable { kid: key.kid.clone(), reason: reason.into() };
        // Whether its tokens go without a kid (and so without the checks that come with one) is
        // read from its kid, which the seal binds, never from the row's `legacy` column alone.
        let legacy = key.kid == LEGACY_KID;
        if key.legacy != legacy {
            return Err(unusable("its legacy flag does not match its id"));
        }
        let kid = (!legacy).then(|| key.kid.clone());
        let private = sealer
            .open(&key.kid, &key.algorithm, &key.sealed_private)
            .map_err(|source| KeyringError::Seal { kid: key.kid.clone(), source })?;
        let (material, jwk) = match alg {
            Algorithm::Hs256 => (private.to_vec(), None),
            Algorithm::Eddsa => {
                let derived = derive.public_jwk(alg, &private, &key.kid).await?;
                let derived: Value = serde_json::from_str(&derived).map_err(|_| unusable("its JWK is not JSON"))?;
                let stored: Option<Value> = key.public_jwk.as_deref().and_then(|jwk| serde_json::from_str(jwk).ok());
                if stored.as_ref() != Some(&derived) {
                    return Err(unusable("its stored public key is not the one its sealed private half makes"));
                }
                let x = derived["x"].as_str().ok_or_else(|| unusable("its JWK has no x"))?;
                let public = URL_SAFE_NO_PAD.decode(x).map_err(|_| unusable("its JWK's x is not base64url"))?;
                (public, Some(derived))
            }
        };
        Ok((VerificationKey { kid, alg, material }, jwk, private))
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
    /// Reads the keys from the store; a host starts only with a key to sign with.
    pub async fn load(store: UserStore, sealer: Sealer, runtime: &Runtime) -> Result<Arc<Self>, KeyringError> {
        let loaded = KeyRing::from_stored(&store.signing_keys().await?, &sealer, runtime, None).await;
        report(&loaded.unusable);
        if loaded.ring.signing.is_none() {
            return Err(loaded.unusable.into_iter().next().unwrap_or(KeyringError::NoActiveKey));
        }
        let ring = arc_swap::ArcSwap::from_pointee(loaded.ring);
        Ok(Arc::new(Self { store, sealer, ring, nudge: Notify::new() }))
    }

    pub fn ring(&self) -> Arc<KeyRing> {
        self.ring.load_full()
    }

    pub fn sealer(&self) -> &Sealer {
        &self.sealer
    }

    /// Reads the keys again (`trigger` says why, for the audit log); whether they changed. Keys
    /// that cannot be used are left out and logged; the others take effect.
    pub async fn refresh(&self, runtime: &Runtime, trigger: &str) -> Result<bool, KeyringError> {
        let stored = self.store.signing_keys().await?;
        let current = self.ring.load();
        if fingerprint(&stored) == current.fingerprint {
            return Ok(false);
        }
        let loaded = KeyRing::from_stored(&stored, &self.sealer, runtime, current.signing.as_ref()).await;
        report(&loaded.unusable);
        let ring = loaded.ring;
        crate::telemetry::audit::record(crate::telemetry::audit::Event::KeysChanged {
            signing: ring.signing.as_ref().map_or("(none)", |key| key.kid.as_deref().unwrap_or(LEGACY_KID)),
            verifying: ring.verifying.len(),
            trigger,
        });
        if ring.signing.is_none() {
            tracing::error!("no usable signing key: logins fail until the active key can be used again");
        }
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
                let trigger = tokio::select! {
                    () = tokio::time::sleep(REFRESH_EVERY) => "poll",
                    () = strong.nudge.notified() => "SIGHUP",
                };
                match strong.refresh(&runtime, trigger).await {
                    Ok(true) => runtime.forget_verified_tokens(),
                    Ok(false) => {}
                    Err(error) => tracing::warn!(%error, "could not read the signing keys; keeping the ones in memory"),
                }
            }
        });
    }
}

/// Logs each key left out of the ring, for the operator.
fn report(unusable: &[KeyringError]) {
    for error in unusable {
        tracing::error!(%error, "a signing key in the database cannot be used; it verifies no token");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: [u8; 32] = [7; 32];

    fn sealer() -> Sealer {
        Sealer::new(&SecretSlice::from(vec![1u8; 32]))
    }

    /// The guest's own key logic, natively, in place of the component.
    struct Native;

    impl PublicJwk for Native {
        async fn public_jwk(&self, alg: Algorithm, private: &[u8], kid: &str) -> Result<String, RuntimeError> {
            assert_eq!(alg, Algorithm::Eddsa);
            auth_guest::keys::public_jwk(auth_guest::keys::Algorithm::EdDsa, private, kid)
                .map_err(|e| RuntimeError::Trap(e.to_string()))
        }
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
        eddsa_with_seed(kid, state, SEED)
    }

    fn eddsa_with_seed(kid: &str, state: KeyState, seed: [u8; 32]) -> StoredKey {
        let jwk = auth_guest::keys::public_jwk(auth_guest::keys::Algorithm::EdDsa, &seed, kid).unwrap();
        stored(kid, "EdDSA", state, &seed, Some(jwk))
    }

    async fn ring(keys: &[StoredKey]) -> Loaded {
        KeyRing::from_stored(keys, &sealer(), &Native, None).await
    }

    #[tokio::test]
    async fn verification_gets_the_public_half_of_an_eddsa_key_never_its_private_one() {
        let ring = ring(&[eddsa("k1", KeyState::Active)]).await.ring;
        let public = auth_guest::keys::public_key(auth_guest::keys::Algorithm::EdDsa, &SEED).unwrap();
        assert_eq!(ring.verifying.len(), 1);
        assert_eq!(ring.verifying[0].material, public);
        assert_ne!(ring.verifying[0].material, SEED.to_vec());
        assert_eq!(ring.signing.as_ref().unwrap().private, SEED.to_vec(), "only the signing key signs");
        assert_eq!(ring.jwks.len(), 1);
    }

    #[tokio::test]
    async fn the_ring_signs_with_the_active_key_and_verifies_with_all_but_retired_ones() {
        let keys = [
            stored(LEGACY_KID, "HS256", KeyState::Verifying, &[9; 32], None),
            eddsa("k1", KeyState::Retired),
            eddsa("k2", KeyState::Verifying),
            eddsa("k3", KeyState::Active),
        ];
        let ring = ring(&keys).await.ring;
        assert_eq!(ring.signing.as_ref().unwrap().kid.as_deref(), Some("k3"));
        let kids: Vec<_> = ring.verifying.iter().map(|k| k.kid.clone()).collect();
        assert_eq!(kids, [None, Some("k2".into()), Some("k3".into())], "the legacy key has no kid; k1 is retired");
        assert_eq!(ring.verifying[0].material, vec![9; 32], "an HS256 key verifies with its secret");
        assert_eq!(ring.jwks.len(), 2, "the legacy secret is never published");
    }

    #[tokio::test]
    async fn no_active_key_or_another_master_key_signs_nothing() {
        assert!(ring(&[eddsa("k1", KeyState::Verifying)]).await.ring.signing.is_none());
        let other = Sealer::new(&SecretSlice::from(vec![2u8; 32]));
        let loaded = KeyRing::from_stored(&[eddsa("k1", KeyState::Active)], &other, &Native, None).await;
        assert!(loaded.ring.signing.is_none() && loaded.ring.verifying.is_empty());
        assert!(matches!(loaded.unusable[..], [KeyringError::Seal { .. }]));
    }

    #[tokio::test]
    async fn a_row_written_without_the_master_key_verifies_nothing_and_stops_nothing_else() {
        // Someone with write access to the table adds a key of their own choosing...
        let attacker_jwk =
            auth_guest::keys::public_jwk(auth_guest::keys::Algorithm::EdDsa, &[66; 32], "planted").unwrap();
        let mut planted = eddsa("planted", KeyState::Verifying);
        planted.public_jwk = Some(attacker_jwk.clone());
        planted.sealed_private = vec![0];
        // ...or swaps the public half of a genuine row for theirs.
        let mut swapped = eddsa("k2", KeyState::Verifying);
        swapped.public_jwk = Some(attacker_jwk.replace("planted", "k2"));
        let keys = [eddsa("k1", KeyState::Retired), planted, swapped, eddsa_with_seed("k3", KeyState::Active, [8; 32])];
        let loaded = ring(&keys).await;
        let kids: Vec<_> = loaded.ring.verifying.iter().map(|k| k.kid.clone()).collect();
        assert_eq!(kids, [Some("k3".to_owned())], "neither row verifies; the retirement holds");
        assert_eq!(loaded.ring.jwks.len(), 1, "neither is published");
        assert_eq!(loaded.unusable.len(), 2);
        assert_eq!(loaded.ring.signing.as_ref().unwrap().kid.as_deref(), Some("k3"));
    }

    #[tokio::test]
    async fn an_unusable_active_key_leaves_the_previous_signer_only_while_it_verifies() {
        let previous = SigningKey { kid: Some("k2".into()), alg: Algorithm::Eddsa, private: SEED.to_vec() };
        let mut broken = eddsa_with_seed("k3", KeyState::Active, [8; 32]);
        broken.sealed_private = vec![1, 2, 3];
        let keys = [eddsa("k2", KeyState::Verifying), broken.clone()];
        let loaded = KeyRing::from_stored(&keys, &sealer(), &Native, Some(&previous)).await;
        assert_eq!(loaded.ring.signing.as_ref().and_then(|k| k.kid.as_deref()), Some("k2"));
        // Once k2 is retired too, nothing signs: never a retired key.
        let keys = [eddsa("k2", KeyState::Retired), broken];
        let loaded = KeyRing::from_stored(&keys, &sealer(), &Native, Some(&previous)).await;
        assert!(loaded.ring.signing.is_none());
    }

    #[tokio::test]
    async fn what_decides_how_a_key_verifies_is_not_the_rows_word() {
        // A retired key's private half is gone (retirement destroys it): writing its state back
        // to verifying or active makes nothing verify.
        let mut unretired = eddsa("k1", KeyState::Verifying);
        unretired.sealed_private = Vec::new();
        // A key's row flagged legacy would verify tokens without a kid (no aud, typ or
        // client_id checks); the flag is read from the sealed kid, and a row that disagrees is out.
        let mut flagged = eddsa("k2", KeyState::Verifying);
        flagged.legacy = true;
        let mut unflagged = stored(LEGACY_KID, "HS256", KeyState::Verifying, &[9; 32], None);
        unflagged.legacy = false;
        let keys = [unretired, flagged, unflagged, eddsa_with_seed("k3", KeyState::Active, [8; 32])];
        let loaded = ring(&keys).await;
        let kids: Vec<_> = loaded.ring.verifying.iter().map(|k| k.kid.clone()).collect();
        assert_eq!(kids, [Some("k3".to_owned())]);
        assert_eq!(loaded.unusable.len(), 3, "{:?}", loaded.unusable);
    }
}
