//! The password grant (RFC 6749 §4.3): a right password for an active account starts a session.

use axum::response::Response;
use secrecy::SecretString;

use super::super::ApiError;
use super::super::client_auth::client_id;
use super::{Asking, TokenRequest, client_of, required, respond};
use crate::accounts::credentials::{Authentication, PendingLogin};
use crate::accounts::policy::{self, Asker};
use crate::accounts::second_factor::{self, Verdict};
use crate::accounts::sessions::Amr;
use crate::state::AppState;
use crate::store::Login;
use crate::telemetry::audit::{self, Event};
use crate::tokens::unix_now;

/// Longest login name accepted: an email address has at most 254 (RFC 5321), a username 32.
const MAX_LOGIN_NAME_BYTES: usize = 320;

pub(super) async fn grant(state: &AppState, asking: &Asking, request: TokenRequest) -> Result<Response, ApiError> {
    let username = required(request.username, "username")?;
    let password = required(request.password, "password")?;
    let spellings = crate::accounts::password::spellings(&password)?;
    let client_id = client_id(request.client_id.as_deref(), asking.basic.as_deref())?;
    // `username` is an email address or a username (pasted ones come with spaces around
    // them, which neither has). Attempts count against the name given, whether or not an
    // account has it (and, silently, against the account under all its names), before any
    // hashing, so a throttled attempt costs no argon2 run and says nothing about the account.
    let name = username.trim();
    if name.is_empty() {
        return Err(ApiError::Validation("Invalid form: missing field `username`".into()));
    }
    if name.len() > MAX_LOGIN_NAME_BYTES {
        return Err(ApiError::Validation(format!("username must be at most {MAX_LOGIN_NAME_BYTES} bytes")));
    }
    let login = Login::parse(name);
    let user = state.store.user_by_login(&login).await?;
    let client = asking.address;
    // Read for every attempt (an id no account has when none matched), so its time says nothing.
    let two_factor = second_factor::required(&state.store, user.as_ref().map_or(-1, |user| user.id)).await?;
    let checked = state
        .credentials
        .authenticate(
            &state.runtime,
            &state.store,
            &state.throttle,
            user.as_ref(),
            login.key(),
            &spellings,
            client,
            two_factor,
        )
        .await?;
    let (needs_rehash, checked_hash, pending) = match checked {
        Authentication::Passed { needs_rehash, checked_hash, pending } => (needs_rehash, checked_hash, pending),
        Authentication::Failed => return Err(ApiError::BadCredentials),
        Authentication::Throttled { retry_after } => return Err(ApiError::too_many_logins(retry_after)),
        Authentication::Crowded { on } => return Err(ApiError::too_many_logins_at_once(on)),
    };
    let user = user.expect("a password passes only for an account");
    let amr = match pending {
        None => Amr::Password,
        Some(pending) => second_step(state, user.id, request.otp.as_ref(), pending, client).await?,
    };
    let mut current_hash = checked_hash;
    if needs_rehash {
        let normalized = spellings.first().expect("a password has a spelling").clone();
        if let Some(upgraded) = upgrade_hash(state, user.id, &current_hash, normalized).await {
            current_hash = upgraded;
        }
    }
    // The operator's policy has the last word, and its claims are made before the session
    // starts, so neither a refusal nor a policy that cannot decide leaves a session behind.
    let now = unix_now();
    let asker = Asker { address: client, now };
    let methods: Vec<&str> = amr.stored().split(' ').collect();
    policy::login(state.policy(), &user, &client_id, &methods, asker).await?;
    let claims = policy::access_claims(state.policy(), &user, &client_id, &methods, "password", asker).await?;
    // The password was right: a failure from here on is the service's, not the user's. The
    // session starts only if the account still holds the hash checked (and is active): a
    // password change or deactivation that committed meanwhile wins.
    let (address, user_agent) = asking.client();
    let sealer = state.tokens.keys.sealer();
    let client_at = client_of(&address, user_agent);
    let mut rechecks = 0;
    let granted = loop {
        let started = state
            .sessions
            .start(&state.store, sealer, user.id, &current_hash, &client_id, &client_at, amr, now)
            .await?;
        if let Ok(granted) = started {
            break granted;
        }
        // The hash changed since the check. A login of the same account racing this one may
        // have upgraded it (same password, new hash), which must not fail this one: the new
        // hash is checked too, and passes only if the password is still the account's.
        let still =
            state.credentials.still_matches(&state.runtime, &state.store, &login, user.id, &current_hash, &spellings);
        let rehashed = match still.await? {
            Some(hash) if rechecks < crate::accounts::credentials::MAX_RECHECKS => hash,
            _ => {
                tracing::info!(
                    user_id = user.id,
                    "a login checked while the password changed or the account was deactivated"
                );
                audit::record(Event::LoginFailed { user_id: Some(user.id), client });
                return Err(ApiError::BadCredentials);
            }
        };
        rechecks += 1;
        current_hash = rehashed;
    };
    audit::record(Event::SessionCreated { user_id: user.id, client });
    audit::record(Event::LoginSucceeded { user_id: user.id, client });
    respond(state, &granted, now, claims).await
}

/// The second factor of a login whose password was right: none sent is `403 mfa_required`
/// (the attempt taken back: neither a failure nor a success); a wrong, stale or used one a
/// failure against the login throttle, `401 invalid_grant`.
async fn second_step(
    state: &AppState,
    user_id: i64,
    otp: Option<&SecretString>,
    pending: PendingLogin,
    client: std::net::IpAddr,
) -> Result<Amr, ApiError> {
    let Some(otp) = otp else {
        pending.withdrawn().await?;
        return Err(ApiError::MfaRequired);
    };
    let sealer = state.tokens.keys.sealer();
    let verdict = second_factor::check(&state.runtime, &state.store, sealer, user_id, otp, unix_now()).await;
    match verdict {
        Ok(Verdict::Code) => pending.passed().await?,
        Ok(Verdict::RecoveryCode) => {
            pending.passed().await?;
            audit::record(Event::MfaRecoveryUsed { user_id, client });
        }
        Ok(Verdict::Refused) => {
            pending.failed().await?;
            audit::record(Event::MfaFailed { user_id, client });
            return Err(ApiError::BadSecondFactor);
        }
        Err(error) => {
            pending.withdrawn().await?;
            return Err(error.into());
        }
    }
    Ok(Amr::PasswordAndOtp)
}

/// Stores a fresh hash made with the active component's (stronger) parameters, unless the
/// stored hash changed since `checked` was verified (the password was changed meanwhile: the
/// newer one wins); the hash stored, when it was. A failure only postpones the upgrade.
async fn upgrade_hash(state: &AppState, user_id: i64, checked: &str, password: SecretString) -> Option<String> {
    let result = match state.runtime.hash_password(password).await {
        Ok(hash) => {
            let replaced = state.store.replace_password_hash(user_id, checked, &hash).await;
            replaced.map(|replaced| replaced.then_some(hash)).map_err(|e| e.to_string())
        }
        Err(error) => Err(error.to_string()),
    };
    match result {
        Ok(Some(hash)) => {
            tracing::info!(user_id, "upgraded a password hash to the current parameters");
            Some(hash)
        }
        Ok(None) => {
            tracing::info!(user_id, "kept a password hash that changed during the upgrade");
            None
        }
        Err(error) => {
            tracing::warn!(user_id, %error, "could not upgrade a password hash");
            None
        }
    }
}
