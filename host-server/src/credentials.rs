//! Checking a password against an account in a time that tells nothing about the account.
//!
//! A login whose account does not exist is checked against a decoy hash made by the serving
//! component, so it costs a real check. That alone is not enough: an account's stored hash
//! may be cheaper than the serving component's (made before a swap to a dearer component, and
//! not re-hashed while the account stays away), and the decoy would then be the slow path.
//! So every check of a failed login is padded, by sleeping (no CPU is burnt), to a floor: the
//! serving component's own cost, measured on the decoy, with a margin for noise. Whether the
//! account exists, and what its hash costs (when it costs no more than the serving
//! component's), no longer shows in the time of the answer. A stored hash dearer than the
//! serving component's (an imported one, or after a swap to a cheaper component) costs its
//! own time until its next successful login re-hashes it.

use std::sync::Arc;
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
    floor: Duration,
}

/// Password checks for logins and password changes; one per host.
#[derive(Default)]
pub struct PasswordChecks {
    reference: Mutex<Option<Arc<Reference>>>,
}

impl PasswordChecks {
    /// Makes the decoy and measures the floor for the serving component now (at start, after
    /// a swap), off the request path.
    pub async fn warm(&self, runtime: &Arc<Runtime>) -> Result<(), RuntimeError> {
        self.reference(runtime).await.map(drop)
    }

    /// The serving component's cost floor for one check (for measurements and tests).
    pub async fn floor(&self, runtime: &Arc<Runtime>) -> Result<Duration, RuntimeError> {
        Ok(self.reference(runtime).await?.floor)
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
        let made = Arc::new(Reference { made_by: serving, decoy, floor });
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
        let pad_until = started + reference.floor * u32::try_from(spellings.len()).unwrap_or(u32::MAX);
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

/// A random password nobody knows: 128 bits, in hex.
fn random_password() -> Result<SecretString, RuntimeError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| RuntimeError::Trap(format!("no randomness: {e}")))?;
    Ok(SecretString::from(bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()))
}
