//! Two-factor login: what enrolment, confirmation and a login's second factor decide. The
//! component makes and checks codes; this keeps the secret sealed under the master key (bound
//! to its account), and spends what a code used: the TOTP step (moved forward only, so a code is
//! good once) or the recovery code, each in one conditional update.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

use crate::keyring::seal::Sealer;
use crate::runtime::{Runtime, RuntimeError};
use crate::store::{StoreError, User, UserStore};

/// The issuer an authenticator app shows beside the account.
pub const ISSUER: &str = "Loom Auth";
/// What the seal binds a secret to, besides its account.
const SEAL_PURPOSE: &str = "totp-sha1";
/// Longest second factor read from a request (a code is 6 digits, a recovery code 11
/// characters; spaces allowed).
const MAX_CODE_CHARS: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum SecondFactorError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("the two-factor secret cannot be sealed or opened: {0}")]
    Seal(String),
}

/// What a person is shown once at enrolment.
pub struct Enrolled {
    /// The secret, base32 (as authenticator apps take it by hand).
    pub secret: String,
    pub otpauth_uri: String,
    pub recovery_codes: Vec<String>,
}

/// Why an enrolment was not started.
pub enum NotEnrolled {
    /// Two-factor login is on already.
    AlreadyOn,
}

fn seal_label(user_id: i64) -> String {
    format!("2fa:{user_id}")
}

/// Starts an enrolment for `user`: a pending secret (sealed) and fresh recovery codes (hashed),
/// replacing a pending one; nothing is needed at login until it is confirmed.
pub async fn enrol(
    runtime: &Arc<Runtime>,
    store: &UserStore,
    sealer: &Sealer,
    user: &User,
    now: i64,
) -> Result<Result<Enrolled, NotEnrolled>, SecondFactorError> {
    if store.second_factor(user.id).await?.is_some_and(|row| row.confirmed()) {
        return Ok(Err(NotEnrolled::AlreadyOn));
    }
    let made = runtime.enrol_second_factor(ISSUER, &user.email).await?;
    let sealed = sealer
        .seal(&seal_label(user.id), SEAL_PURPOSE, &made.secret)
        .map_err(|e| SecondFactorError::Seal(e.to_string()))?;
    if !store.put_pending_second_factor(user.id, &sealed, &made.recovery_hashes, now).await? {
        return Ok(Err(NotEnrolled::AlreadyOn));
    }
    let secret = url::Url::parse(&made.otpauth_uri)
        .ok()
        .and_then(|uri| uri.query_pairs().find(|(name, _)| name == "secret").map(|(_, value)| value.into_owned()))
        .ok_or_else(|| SecondFactorError::Seal("the component's otpauth URI names no secret".into()))?;
    Ok(Ok(Enrolled { secret, otpauth_uri: made.otpauth_uri, recovery_codes: made.recovery_codes }))
}

/// What a presented second factor came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A current code from the app.
    Code,
    /// An unused recovery code, now spent.
    RecoveryCode,
    /// Wrong, stale, or already used.
    Refused,
}

/// Why a confirmation did not confirm.
pub enum NotConfirmed {
    /// No enrolment is waiting (none started, or confirmed already).
    NothingPending,
    /// The code is wrong.
    WrongCode,
}

/// Confirms `user_id`'s pending enrolment with its first code: from then on logins need a
/// second factor. The code's step is spent with it.
pub async fn confirm(
    runtime: &Runtime,
    store: &UserStore,
    sealer: &Sealer,
    user_id: i64,
    code: &SecretString,
    now: i64,
) -> Result<Result<(), NotConfirmed>, SecondFactorError> {
    let Some(row) = store.second_factor(user_id).await?.filter(|row| !row.confirmed()) else {
        return Ok(Err(NotConfirmed::NothingPending));
    };
    let secret = open(sealer, user_id, &row.sealed_secret)?;
    let typed = bounded(code.expose_secret());
    let Some(step) = runtime.check_code(&secret, &typed, unix_seconds(now), None).await? else {
        return Ok(Err(NotConfirmed::WrongCode));
    };
    let step = i64::try_from(step).unwrap_or(i64::MAX);
    if store.confirm_second_factor(user_id, &row.sealed_secret, step, now).await? {
        Ok(Ok(()))
    } else {
        Ok(Err(NotConfirmed::NothingPending))
    }
}

/// Whether `user_id` must give a second factor to log in (a confirmed one).
pub async fn required(store: &UserStore, user_id: i64) -> Result<bool, StoreError> {
    Ok(store.second_factor(user_id).await?.is_some_and(|row| row.confirmed()))
}

/// Checks a second factor for `user_id`'s login: a 6-digit code (one step either way of `now`,
/// only a step after the last one used, which it then becomes), else an unused recovery code
/// (then spent). Racing logins with one code: exactly one is accepted.
pub async fn check(
    runtime: &Arc<Runtime>,
    store: &UserStore,
    sealer: &Sealer,
    user_id: i64,
    presented: &SecretString,
    now: i64,
) -> Result<Verdict, SecondFactorError> {
    let Some(row) = store.second_factor(user_id).await?.filter(|row| row.confirmed()) else {
        return Ok(Verdict::Refused);
    };
    let typed = bounded(presented.expose_secret());
    let digits: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
    if digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit()) {
        let secret = open(sealer, user_id, &row.sealed_secret)?;
        let last = row.last_step.and_then(|step| u64::try_from(step).ok());
        let Some(step) = runtime.check_code(&secret, &digits, unix_seconds(now), last).await? else {
            return Ok(Verdict::Refused);
        };
        let spent = store.spend_step(user_id, i64::try_from(step).unwrap_or(i64::MAX)).await?;
        return Ok(if spent { Verdict::Code } else { Verdict::Refused });
    }
    let unused = store.unused_recovery_codes(user_id).await?;
    if unused.is_empty() {
        return Ok(Verdict::Refused);
    }
    let (ids, hashes): (Vec<i64>, Vec<String>) = unused.into_iter().unzip();
    let matched = runtime.match_recovery_code(zeroize::Zeroizing::new(typed), hashes).await?;
    let Some(id) = matched.and_then(|index| ids.get(index as usize).copied()) else {
        return Ok(Verdict::Refused);
    };
    Ok(if store.spend_recovery_code(id, now).await? { Verdict::RecoveryCode } else { Verdict::Refused })
}

fn open(sealer: &Sealer, user_id: i64, sealed: &[u8]) -> Result<zeroize::Zeroizing<Vec<u8>>, SecondFactorError> {
    sealer.open(&seal_label(user_id), SEAL_PURPOSE, sealed).map_err(|e| SecondFactorError::Seal(e.to_string()))
}

/// A typed code without the whitespace around it; longer than [`MAX_CODE_CHARS`], nothing
/// (which matches no code).
fn bounded(typed: &str) -> String {
    let typed = typed.trim();
    if typed.chars().count() > MAX_CODE_CHARS { String::new() } else { typed.to_owned() }
}

fn unix_seconds(now: i64) -> u64 {
    u64::try_from(now).unwrap_or(0)
}
