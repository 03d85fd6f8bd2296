//! Checking a password against an account in a time that tells nothing about the account.
//!
//! A login whose account does not exist is checked against a decoy hash made by the serving
//! component, so it costs a real check. That alone is not enough: an account's stored hash
//! may be cheaper than the serving component's (made before a swap to a dearer component, and
//! not re-hashed while the account stays away), and the decoy would then be the slow path.
//! So every check of a failed login is padded, by sleeping (no CPU is burnt), to a floor: the
//! serving component's own cost, measured on the decoy, with a margin for noise. Whether the
//! account exists, and what its hash costs, no longer shows in the time of the answer: the
//! floor also rises with the dearest argon2 parameters stored (made before a swap back to a
//! cheaper component), surveyed at start and noted at every check, in proportion to what they
//! cost next to the serving component's. (A hash of another algorithm, imported, costs its own
//! time until its first login re-hashes it.)

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use secrecy::SecretString;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::runtime::{PasswordError, Runtime, RuntimeError};

/// How many checks of the decoy measure the serving component's cost (the fastest counts:
/// noise only ever adds time).
const MEASUREMENTS: usize = 3;
/// The floor is the measured cost times this, so that a check slowed by noise (a busy
/// machine) still ends before the floor, and only the floor shows.
const MARGIN: f64 = 1.5;

/// The outcome of checking a password against an account (or against nothing).
#[derive(Debug)]
pub struct Verdict {
    /// The password is the account's.
    pub matches: bool,
    /// The stored hash should be replaced with one the serving component makes from the
    /// normalised spelling (weaker parameters, or a match in another spelling).
    pub needs_rehash: bool,
    /// The stored hash the check was made against.
    pub checked_hash: String,
    /// Before answering that a login failed, wait until then ([`Verdict::pad`]).
    pad_until: Instant,
}

impl Verdict {
    /// Waits until the floor for this check: call before answering a failure, whatever the reason.
    pub async fn pad(&self) {
        tokio::time::sleep_until(self.pad_until).await;
    }
}

/// The account a password is checked against: its id (for the log) and stored hash.
pub struct Stored<'a> {
    pub user_id: i64,
    pub hash: &'a str,
}

/// The decoy hash and the cost floor, for the component that made them.
struct Reference {
    made_by: String,
    decoy: String,
    /// The floor for one check of a hash as dear as the decoy.
    floor: Duration,
    /// The decoy's argon2 cost ([`argon2_cost`]).
    decoy_cost: u64,
}

/// Password checks for logins and password changes; one per host.
#[derive(Default)]
pub struct PasswordChecks {
    reference: Mutex<Option<Arc<Reference>>>,
    /// The dearest argon2 cost of a stored hash seen so far ([`argon2_cost`]).
    dearest: AtomicU64,
}

/// What an argon2 PHC string's check costs, in memory KiB times passes (what its time grows
/// with); `None` for anything else.
pub fn argon2_cost(phc: &str) -> Option<u64> {
    let mut parts = phc.split('$').skip(1);
    if !parts.next()?.starts_with("argon2") {
        return None;
    }
    let mut params = parts.next()?;
    if params.starts_with("v=") {
        params = parts.next()?;
    }
    let (mut memory, mut passes) = (None, None);
    for pair in params.split(',') {
        match pair.split_once('=')? {
            ("m", value) => memory = value.parse::<u64>().ok(),
            ("t", value) => passes = value.parse::<u64>().ok(),
            _ => {}
        }
    }
    memory?.checked_mul(passes?)
}

/// The part of a PHC string before its salt: `$argon2id$v=19$m=19456,t=2,p=1$`.
fn parameters_prefix(phc: &str) -> Option<&str> {
    let end = phc.match_indices('$').nth(3)?.0;
    Some(&phc[..=end])
}

impl PasswordChecks {
    /// Makes the decoy and measures the floor for the serving component now (at start, after
    /// a swap), off the request path.
    pub async fn warm(&self, runtime: &Arc<Runtime>) -> Result<(), RuntimeError> {
        self.reference(runtime).await.map(drop)
    }

    /// The cost floor for one check (for measurements and tests).
    pub async fn floor(&self, runtime: &Arc<Runtime>) -> Result<Duration, RuntimeError> {
        let reference = self.reference(runtime).await?;
        Ok(self.floor_of(&reference))
    }

    /// The floor for one check: the serving component's, raised in proportion to the dearest
    /// stored hash known.
    fn floor_of(&self, reference: &Reference) -> Duration {
        let dearest = self.dearest.load(Ordering::Relaxed);
        if dearest <= reference.decoy_cost || reference.decoy_cost == 0 {
            return reference.floor;
        }
        reference.floor.mul_f64(dearest as f64 / reference.decoy_cost as f64)
    }

    /// Notes a stored hash's cost, so the floor covers it.
    fn note(&self, phc: &str) {
        if let Some(cost) = argon2_cost(phc) {
            self.dearest.fetch_max(cost, Ordering::Relaxed);
        }
    }

    /// Surveys the stored hashes whose parameters differ from the serving component's, so the
    /// floor covers the dearest from the start, not only once one is checked.
    pub async fn survey(&self, runtime: &Arc<Runtime>, store: &crate::store::UserStore) -> Result<(), SurveyError> {
        let reference = self.reference(runtime).await?;
        let prefix = parameters_prefix(&reference.decoy).unwrap_or_default();
        let mut noted = 0u64;
        store
            .hashes_not_starting_with(prefix, |phc| {
                self.note(phc);
                noted += 1;
            })
            .await?;
        tracing::debug!(noted, dearest = self.dearest.load(Ordering::Relaxed), "surveyed the stored password hashes");
        Ok(())
    }

    async fn reference(&self, runtime: &Arc<Runtime>) -> Result<Arc<Reference>, RuntimeError> {
        let serving = runtime.info().sha256;
        let mut reference = self.reference.lock().await;
        if let Some(made) = reference.as_ref()
            && made.made_by == serving
        {
            return Ok(Arc::clone(made));
        }
        let decoy = runtime.hash_password(random_password()?).await?;
        let mut fastest = Duration::MAX;
        for _ in 0..MEASUREMENTS {
            let started = Instant::now();
            runtime.verify_password(random_password()?, decoy.clone()).await?;
            fastest = fastest.min(started.elapsed());
        }
        let floor = fastest.mul_f64(MARGIN);
        tracing::debug!(floor_ms = floor.as_millis() as u64, "measured the cost of a password check");
        let decoy_cost = argon2_cost(&decoy).unwrap_or(0);
        let made = Arc::new(Reference { made_by: serving, decoy, floor, decoy_cost });
        *reference = Some(Arc::clone(&made));
        Ok(made)
    }

    /// Checks a password, in each of its `spellings` until one matches, against `account`'s
    /// stored hash, or against the decoy when there is no account. A match in a spelling other
    /// than the first (the normalised one) asks for a re-hash.
    ///
    /// Every failure costs one check per spelling: a stored hash that is not a valid PHC string
    /// is logged for the operator and checked as the decoy. The floor covers every spelling.
    pub async fn check(
        &self,
        runtime: &Arc<Runtime>,
        account: Option<Stored<'_>>,
        spellings: &[SecretString],
    ) -> Result<Verdict, RuntimeError> {
        let started = Instant::now();
        let reference = self.reference(runtime).await?;
        if let Some(account) = &account {
            self.note(account.hash);
        }
        let pad_until = started + self.floor_of(&reference) * u32::try_from(spellings.len()).unwrap_or(u32::MAX);
        let checked_hash = account.as_ref().map_or_else(String::new, |a| a.hash.to_owned());
        let mut target = account.as_ref().map_or_else(|| reference.decoy.clone(), |a| a.hash.to_owned());
        for (index, password) in spellings.iter().enumerate() {
            match runtime.verify_password(password.clone(), target.clone()).await {
                Ok(check) if check.matches && account.is_some() => {
                    let needs_rehash = check.needs_rehash || index > 0;
                    return Ok(Verdict { matches: true, needs_rehash, checked_hash, pad_until });
                }
                Ok(_) => {}
                Err(RuntimeError::Password(PasswordError::MalformedHash)) if account.is_some() => {
                    tracing::error!(
                        user_id = account.as_ref().map(|a| a.user_id),
                        "the stored password hash is not a valid PHC string: this account cannot log in until its \
                         password is reset"
                    );
                    target = reference.decoy.clone();
                    runtime.verify_password(password.clone(), target.clone()).await?;
                }
                Err(other) => return Err(other),
            }
        }
        Ok(Verdict { matches: false, needs_rehash: false, checked_hash, pad_until })
    }
}

/// Why the stored hashes could not be surveyed.
#[derive(Debug, thiserror::Error)]
pub enum SurveyError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

/// A random password nobody knows: 128 bits, in hex.
fn random_password() -> Result<SecretString, RuntimeError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| RuntimeError::Trap(format!("no randomness: {e}")))?;
    Ok(SecretString::from(bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()))
}

/// What a password presented for an account came to, throttle included.
pub enum Authentication {
    /// Right, for an active account. Re-hash the normalised spelling when `needs_rehash`.
    Passed { needs_rehash: bool, checked_hash: String },
    /// Wrong, or for no account, or for a deactivated one: all alike, and padded.
    Failed,
    /// Refused before any check: too many failures within the window.
    Throttled { retry_after: u64 },
    /// Refused before any check: too many attempts running at once.
    Crowded { on: crate::store::Crowd },
}

impl PasswordChecks {
    /// Checks a password presented for `user` (`None`: no account matched; attempts then count
    /// under `account_key`, the name given), counted by the throttle against the account and
    /// `client`, before any hashing. A failure is settled, recorded and padded before this
    /// returns, so the answer's time tells nothing.
    #[allow(clippy::too_many_arguments)]
    pub async fn authenticate(
        &self,
        runtime: &Arc<Runtime>,
        store: &crate::store::UserStore,
        throttle: &crate::throttle::ThrottlePolicy,
        user: Option<&crate::store::User>,
        account_key: String,
        spellings: &[SecretString],
        client: std::net::IpAddr,
    ) -> Result<Authentication, AuthenticationError> {
        use crate::telemetry::audit::{self, Event};
        use crate::throttle::Gate;
        let attempt = match throttle.admit_login(store, account_key, client).await? {
            Gate::Open(attempt) => attempt,
            Gate::Throttled { retry_after } => {
                audit::record(Event::LoginThrottled { client });
                return Ok(Authentication::Throttled { retry_after });
            }
            Gate::Crowded { on } => {
                audit::record(Event::LoginThrottled { client });
                return Ok(Authentication::Crowded { on });
            }
        };
        let stored = user.map(|user| Stored { user_id: user.id, hash: &user.hashed_password });
        let verdict = self.check(runtime, stored, spellings).await?;
        match user {
            Some(user) if verdict.matches && user.is_active => {
                attempt.succeeded().await?;
                Ok(Authentication::Passed { needs_rehash: verdict.needs_rehash, checked_hash: verdict.checked_hash })
            }
            other => {
                attempt.failed().await?;
                audit::record(Event::LoginFailed { user_id: other.map(|user| user.id), client });
                verdict.pad().await;
                Ok(Authentication::Failed)
            }
        }
    }
}

/// Why a password could not be checked at all (the service's failure, not the user's).
#[derive(Debug, thiserror::Error)]
pub enum AuthenticationError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_argon2_hash_costs_its_memory_times_its_passes() {
        let hardened = "$argon2id$v=19$m=32768,t=3,p=1$c2FsdHNhbHQ$aGFzaGhhc2g";
        assert_eq!(argon2_cost(hardened), Some(98_304));
        assert_eq!(argon2_cost("$argon2i$m=19456,t=2,p=1$c2FsdA$aGFzaA"), Some(38_912), "no version field");
        assert_eq!(parameters_prefix(hardened), Some("$argon2id$v=19$m=32768,t=3,p=1$"));
        for other in ["$2b$12$abcdefghijklmnopqrstuv", "plain", "$argon2id$v=19$m=x,t=3,p=1$s$h", ""] {
            assert_eq!(argon2_cost(other), None, "{other}");
        }
    }
}
