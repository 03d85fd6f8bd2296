//! Checking a password against an account in a time that tells nothing about the account.
//!
//! A login whose account does not exist is checked against a decoy hash made by the serving
//! component, so it costs a real check. That alone is not enough: an account's stored hash
//! may be cheaper than the serving component's (made before a swap to a dearer component, and
//! not re-hashed while the account stays away), and the decoy would then be the slow path.
//! So every check of a failed login is padded, by sleeping (no CPU is burnt), to a floor: the
//! serving component's own cost, measured on the decoy, with a margin for noise, raised by
//! dearer hashes stored ([`floor`]). Whether the account exists, and what its hash costs, no
//! longer shows in the time of the answer.

mod floor;

pub use floor::{IMPORTS_POLL, SURVEY_EVERY};

use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

use crate::runtime::{PasswordError, Runtime, RuntimeError};

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

/// Password checks for logins and password changes; one per host.
#[derive(Default)]
pub struct PasswordChecks {
    floor: floor::Floor,
}

impl PasswordChecks {
    /// Makes the decoy and measures the floor for the serving component now (at start, after
    /// a swap), off the request path.
    pub async fn warm(&self, runtime: &Arc<Runtime>) -> Result<(), RuntimeError> {
        self.floor.reference(runtime).await.map(drop)
    }

    /// The cost floor for one check (for measurements and tests).
    pub async fn floor(&self, runtime: &Arc<Runtime>) -> Result<Duration, RuntimeError> {
        let reference = self.floor.reference(runtime).await?;
        Ok(self.floor.of(&reference))
    }

    /// Surveys the stored hashes whose parameters differ from the serving component's, so the
    /// floor covers the dearest from the start (and, run every [`SURVEY_EVERY`], an import made
    /// meanwhile), not only once one is checked.
    pub async fn survey(&self, runtime: &Arc<Runtime>, store: &crate::store::UserStore) -> Result<(), SurveyError> {
        self.floor.survey(runtime, store).await
    }

    /// Checks a password, in each of its `spellings` until one matches, against `account`'s
    /// stored hash, or against the decoy when there is no account. A match in a spelling other
    /// than the first (the normalised one) asks for a re-hash, unless the stored format cannot
    /// tell the password matched from another that begins alike (bcrypt's 72 bytes).
    ///
    /// Every failure costs one check per spelling: a stored hash that cannot be checked here
    /// (not a valid PHC string, too dear for the instance's memory or the deadline, one the
    /// component faults on) is logged for the operator and the decoy is checked instead, so it
    /// fails like a wrong password, padded alike. The floor covers every spelling.
    pub async fn check(
        &self,
        runtime: &Arc<Runtime>,
        account: Option<Stored<'_>>,
        spellings: &[SecretString],
    ) -> Result<Verdict, RuntimeError> {
        let started = Instant::now();
        let reference = self.floor.reference(runtime).await?;
        if let Some(account) = &account {
            self.floor.note(account.hash);
        }
        let pad_until = started + self.floor.of(&reference) * u32::try_from(spellings.len()).unwrap_or(u32::MAX);
        let format = account.as_ref().and_then(|a| crate::accounts::password::HashFormat::of(a.hash).ok());
        // A stored hash that may cost more than the decoy is timed: its cost is known only so.
        let timed = format.as_ref().filter(|format| reference.dearer_than_decoy(format));
        let checked_hash = account.as_ref().map_or_else(String::new, |a| a.hash.to_owned());
        let mut target = account.as_ref().map_or_else(|| reference.decoy.clone(), |a| a.hash.to_owned());
        if let Some(account) = &account {
            if format.as_ref().is_some_and(|format| needs_more_memory_than(runtime, format)) {
                unusable(
                    account,
                    "asks for more memory than an instance of the component may have (--guest-memory-mib)",
                );
                target = reference.decoy.clone();
            } else if format.as_ref().is_some_and(|format| !self.floor.usable(format)) {
                unusable(account, "is of a format this host found it cannot check (see --hash-deadline-ms)");
                target = reference.decoy.clone();
            }
        }
        for (index, password) in spellings.iter().enumerate() {
            let checking = Instant::now();
            let outcome = runtime.verify_password(password.clone(), target.clone()).await;
            let on_decoy = target == reference.decoy;
            if let (Some(format), Ok(_), false) = (timed, &outcome, on_decoy) {
                self.floor.note_time(format, checking.elapsed());
            }
            let error = match (outcome, &account) {
                (Ok(check), Some(_)) if check.matches && !on_decoy => {
                    let distinguishes =
                        format.as_ref().is_none_or(|f| f.distinguishes(password.expose_secret().as_bytes()));
                    if (check.needs_rehash || index > 0) && !distinguishes {
                        tracing::info!(
                            user_id = account.as_ref().map(|a| a.user_id),
                            "kept a bcrypt hash: the password matched it by its first 72 bytes, so another password \
                             that begins alike would too, and it cannot be re-hashed from this login"
                        );
                    }
                    let needs_rehash = (check.needs_rehash || index > 0) && distinguishes;
                    return Ok(Verdict { matches: true, needs_rehash, checked_hash, pad_until });
                }
                (Ok(_), _) => continue,
                // A fault of the stored hash itself: one that is not a valid PHC string, or one
                // dearer than the decoy (past the deadline or the memory here). A full hashing
                // queue, or a hash no dearer than the decoy that faults (a deadline passed under
                // load), says nothing of the account: the service's, a 503.
                (Err(error), Some(_))
                    if !on_decoy
                        && !matches!(error, RuntimeError::Busy)
                        && (timed.is_some()
                            || matches!(error, RuntimeError::Password(PasswordError::MalformedHash))) =>
                {
                    error
                }
                (Err(other), _) => return Err(other),
            };
            // The decoy, with the same password: a fault the password causes (or a broken
            // component) faults there too, and is the service's (a 503, whatever the account).
            target = reference.decoy.clone();
            runtime.verify_password(password.clone(), target.clone()).await?;
            // So it was the stored hash's: the account fails like a wrong password (its time padded
            // alike), not with an answer that tells it exists.
            if let Some(stored) = &account {
                let why = match &error {
                    RuntimeError::Password(PasswordError::MalformedHash) => "is not a valid PHC string".to_owned(),
                    RuntimeError::Trap(trap) if trap.contains("memory") => {
                        "needs more memory to check than an instance of the component may have".to_owned()
                    }
                    other => format!("could not be checked ({other})"),
                };
                unusable(stored, &why);
            }
            if let Some(format) = timed {
                // A cost the serving component's hashes do not reach: until a survey finds it checks
                // after all, its accounts are checked as the decoy, and answer in its time.
                self.floor.note_unusable(format);
            }
        }
        Ok(Verdict { matches: false, needs_rehash: false, checked_hash, pad_until })
    }
}

/// Whether checking a hash of `format` would ask for more memory than one instance may have.
fn needs_more_memory_than(runtime: &Runtime, format: &crate::accounts::password::HashFormat) -> bool {
    format.memory_bytes().is_some_and(|needed| needed > u64::try_from(runtime.memory_limit_bytes()).unwrap_or(u64::MAX))
}

/// Says, for the operator, why `account` cannot log in.
fn unusable(account: &Stored<'_>, why: &str) {
    tracing::error!(
        user_id = account.user_id,
        "the stored password hash {why}: this account cannot log in until its password is reset"
    );
}

/// Surveys the stored hashes' costs now, after every import and every swap of the component
/// (within [`IMPORTS_POLL`]: hashes the previous one made may be dearer than the new one's), and
/// every [`SURVEY_EVERY`]; runs for the host's life.
pub async fn watch_stored_costs(checks: &PasswordChecks, runtime: &Arc<Runtime>, store: &crate::store::UserStore) {
    let (mut surveyed_at, mut surveyed_import) = (None::<Instant>, None::<i64>);
    let mut surveyed_component = String::new();
    loop {
        let last_import = store.last_import().await.ok();
        let serving = runtime.info().sha256;
        let due = surveyed_at.is_none_or(|at| at.elapsed() >= SURVEY_EVERY)
            || (last_import.is_some() && last_import != surveyed_import)
            || serving != surveyed_component;
        if due {
            if let Err(error) = checks.survey(runtime, store).await {
                tracing::warn!(%error, "could not survey the stored password hashes' costs");
            }
            (surveyed_at, surveyed_import) = (Some(Instant::now()), last_import.or(surveyed_import));
            surveyed_component = serving;
        }
        tokio::time::sleep(IMPORTS_POLL).await;
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

/// What a password presented for an account came to, throttle included.
pub enum Authentication {
    /// Right, for an active account. Re-hash the normalised spelling when `needs_rehash`. For
    /// an account whose login needs a second factor, the attempt is `pending` until the code
    /// is checked: the caller settles it.
    Passed { needs_rehash: bool, checked_hash: String, pending: Option<PendingLogin> },
    /// Wrong, or for no account, or for a deactivated one: all alike, and padded.
    Failed,
    /// Refused before any check: too many failures within the window.
    Throttled { retry_after: u64 },
    /// Refused before any check: too many attempts running at once.
    Crowded { on: crate::store::Crowd },
}

impl PasswordChecks {
    /// Checks a password presented for `user` (`None`: no account matched) under the name
    /// whose key is `name_key`, counted by the throttle against that name and `client`, before
    /// any hashing. A name is throttled by its own count only, whichever account it names, so a
    /// `429` never links a username to an email; the account's attempts under all its names
    /// together are capped too, silently: past the cap a login is checked as for no account
    /// (the decoy), and fails alike. A failure is settled, recorded and padded before this
    /// returns, so the answer's time tells nothing.
    #[allow(clippy::too_many_arguments)]
    pub async fn authenticate(
        &self,
        runtime: &Arc<Runtime>,
        store: &crate::store::UserStore,
        throttle: &crate::accounts::throttle::ThrottlePolicy,
        user: Option<&crate::store::User>,
        name_key: String,
        spellings: &[SecretString],
        client: std::net::IpAddr,
        second_factor: bool,
    ) -> Result<Authentication, AuthenticationError> {
        use crate::accounts::throttle::Gate;
        use crate::telemetry::audit::{self, Event};
        let attempt = match throttle.admit_login(store, name_key, client).await? {
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
        let names = user.map(crate::store::User::login_keys);
        let checked = match (user, &names) {
            (Some(user), Some(names)) if !attempt.account_spent(throttle, names).await? => Some(user),
            _ => None,
        };
        let stored = checked.map(|user| Stored { user_id: user.id, hash: &user.hashed_password });
        let verdict = self.check(runtime, stored, spellings).await?;
        match (checked, &names) {
            (Some(user), Some(names)) if verdict.matches && user.is_active => {
                let pending = if second_factor {
                    Some(PendingLogin { attempt, names: names.clone() })
                } else {
                    attempt.succeeded(names).await?;
                    None
                };
                let (needs_rehash, checked_hash) = (verdict.needs_rehash, verdict.checked_hash);
                Ok(Authentication::Passed { needs_rehash, checked_hash, pending })
            }
            _ => {
                attempt.failed().await?;
                audit::record(Event::LoginFailed { user_id: user.map(|user| user.id), client });
                verdict.pad().await;
                Ok(Authentication::Failed)
            }
        }
    }
}

/// A login whose password was right, waiting for its second factor: the throttle counts it as
/// in flight until it is settled here (dropped unsettled, it counts as a failure).
pub struct PendingLogin {
    attempt: crate::accounts::throttle::AdmittedLogin,
    names: [String; 2],
}

impl PendingLogin {
    /// The code was right: the account's failures are forgotten.
    pub async fn passed(self) -> Result<(), crate::store::StoreError> {
        self.attempt.succeeded(&self.names).await
    }

    /// The code was wrong, stale or used: a failure, against the same allowance as passwords.
    pub async fn failed(self) -> Result<(), crate::store::StoreError> {
        self.attempt.failed().await
    }

    /// No code was sent (the client asks for one next): neither a failure nor a success, so
    /// a right password alone never clears the failures wrong codes made.
    pub async fn withdrawn(self) -> Result<(), crate::store::StoreError> {
        self.attempt.withdrawn().await
    }
}

/// How many times an action whose account's hash was upgraded meanwhile checks the new one: an
/// upgrade happens once per password, so more changes than that are password changes.
pub const MAX_RECHECKS: usize = 2;

impl PasswordChecks {
    /// After a right password whose action found the account's hash no longer `checked` (a
    /// login of the same account racing this one may have upgraded it: same password, new
    /// hash): the hash stored now, if the account is still active and the password (in one of
    /// its `spellings`) matches it too; `None` when the password was changed or the account
    /// deactivated. The password was right a moment ago, so the throttle is not asked.
    pub async fn still_matches(
        &self,
        runtime: &Arc<Runtime>,
        store: &crate::store::UserStore,
        login: &crate::store::Login<'_>,
        user_id: i64,
        checked: &str,
        spellings: &[SecretString],
    ) -> Result<Option<String>, AuthenticationError> {
        let Some(now) = store.user_by_login(login).await?.filter(|now| now.id == user_id && now.is_active) else {
            return Ok(None);
        };
        if now.hashed_password == checked {
            return Ok(None);
        }
        let stored = Stored { user_id, hash: &now.hashed_password };
        let verdict = self.check(runtime, Some(stored), spellings).await?;
        Ok(verdict.matches.then_some(now.hashed_password))
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
