//! `/users/me/2fa`: two-factor login. Enrolment (with the password) makes a secret and recovery
//! codes, shown once; the first code confirms it, and every other session ends; turning it off
//! or renewing the recovery codes needs the password and a code. Only a password login may.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::docs::ErrorBody;
use super::extract::ApiJson;
use super::{ApiError, ClientAddr, PasswordLogin};
use crate::accounts::second_factor::{self, NotConfirmed, NotEnrolled, SecondFactorError, Verdict};
use crate::accounts::throttle::{AdmittedLogin, Gate};
use crate::runtime::RuntimeError;
use crate::state::AppState;
use crate::telemetry::audit::{self, Event};
use crate::tokens::unix_now;

impl From<SecondFactorError> for ApiError {
    fn from(error: SecondFactorError) -> Self {
        match error {
            SecondFactorError::Store(error) => error.into(),
            SecondFactorError::Runtime(error @ RuntimeError::NoSecondFactor { .. }) => {
                Self::NoSecondFactorSupport(format!("Two-factor login is not available on this server: {error}"))
            }
            SecondFactorError::Runtime(error) => error.into(),
            SecondFactorError::Seal(reason) => Self::Internal(anyhow::anyhow!(reason)),
        }
    }
}

/// The password, to start an enrolment.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct PasswordOnly {
    #[schema(value_type = String, format = Password)]
    password: SecretString,
}

/// What an authenticator app needs, and the recovery codes: shown this once.
#[derive(Serialize, utoipa::ToSchema)]
pub struct EnrolmentOut {
    /// The secret, base32, for typing into an app by hand.
    #[schema(example = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")]
    secret: String,
    /// `otpauth://totp/Loom%20Auth:<email>?secret=…&issuer=Loom%20Auth&…`, for a QR code.
    otpauth_uri: String,
    /// Ten codes for a lost phone, each good once. Not needed until the enrolment is confirmed.
    recovery_codes: Vec<String>,
}

/// A code from the authenticator app.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct CodeOnly {
    #[schema(value_type = String, format = Password, example = "123456")]
    code: SecretString,
}

/// The password and a code (from the app, or a recovery code).
#[derive(Deserialize, utoipa::ToSchema)]
pub struct PasswordAndCode {
    #[schema(value_type = String, format = Password)]
    password: SecretString,
    #[schema(value_type = String, format = Password, example = "123456")]
    code: SecretString,
}

/// Fresh recovery codes: shown this once; the old ones no longer work.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RecoveryCodesOut {
    recovery_codes: Vec<String>,
}

/// Start turning on two-factor login: a secret for an authenticator app and ten recovery codes.
/// Nothing changes at login until `POST /users/me/2fa/confirm` with a first code.
#[utoipa::path(
    post,
    path = "/users/me/2fa",
    operation_id = "enrol_second_factor",
    tag = "two-factor",
    security(("OAuth2PasswordBearer" = [])),
    request_body = PasswordOnly,
    responses(
        (status = 200, description = "Pending: scan the URI, then confirm with a code", body = EnrolmentOut),
        (status = 400, description = "The password is wrong", body = ErrorBody),
        (status = 401, description = "No token, or one that is invalid, expired or revoked", body = ErrorBody),
        (status = 403, description = "The caller is not a password login", body = ErrorBody),
        (status = 409, description = "Two-factor login is on already", body = ErrorBody),
        (status = 422, description = "The body is not acceptable", body = ErrorBody),
        (status = 429, description = "Too many failed password checks", body = ErrorBody),
        (status = 501, description = "The serving auth component cannot make second factors", body = ErrorBody),
        (status = 503, description = "Busy or a dependency is unavailable; try again", body = ErrorBody),
    )
)]
#[tracing::instrument(name = "enrol_second_factor", skip_all)]
pub async fn enrol(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    PasswordLogin(current): PasswordLogin,
    ApiJson(asked): ApiJson<PasswordOnly>,
) -> Result<Json<EnrolmentOut>, ApiError> {
    let user = &current.user;
    if !state.runtime.has_second_factor() {
        let error = RuntimeError::NoSecondFactor { wit_version: state.runtime.info().wit_version };
        return Err(SecondFactorError::Runtime(error).into());
    }
    super::password::confirm(&state, client, user, &asked.password, "The password is incorrect").await?;
    let sealer = state.tokens.keys.sealer();
    match second_factor::enrol(&state.runtime, &state.store, sealer, user, unix_now()).await? {
        Ok(made) => Ok(Json(EnrolmentOut {
            secret: made.secret,
            otpauth_uri: made.otpauth_uri,
            recovery_codes: made.recovery_codes,
        })),
        Err(NotEnrolled::AlreadyOn) => Err(ApiError::SecondFactorOn),
    }
}

/// Turn on two-factor login with the first code from the app: from now on a login needs a
/// code (or a recovery code) after the password, and every other session of the account ends.
#[utoipa::path(
    post,
    path = "/users/me/2fa/confirm",
    operation_id = "confirm_second_factor",
    tag = "two-factor",
    security(("OAuth2PasswordBearer" = [])),
    request_body = CodeOnly,
    responses(
        (status = 204, description = "On; the other sessions ended"),
        (status = 400, description = "The code is wrong", body = ErrorBody),
        (status = 401, description = "No token, or one that is invalid, expired or revoked", body = ErrorBody),
        (status = 403, description = "The caller is not a password login", body = ErrorBody),
        (status = 409, description = "No enrolment is waiting", body = ErrorBody),
        (status = 422, description = "The body is not acceptable", body = ErrorBody),
        (status = 429, description = "Too many wrong codes or passwords", body = ErrorBody),
        (status = 501, description = "The serving auth component cannot check second factors", body = ErrorBody),
        (status = 503, description = "Busy or a dependency is unavailable; try again", body = ErrorBody),
    )
)]
#[tracing::instrument(name = "confirm_second_factor", skip_all)]
pub async fn confirm(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    PasswordLogin(current): PasswordLogin,
    ApiJson(asked): ApiJson<CodeOnly>,
) -> Result<StatusCode, ApiError> {
    let user_id = current.user.id;
    let now = unix_now();
    let sealer = state.tokens.keys.sealer();
    // A stolen session must not walk the first code either.
    let attempt = admitted(&state, client, &current.user.email).await?;
    let confirmed = second_factor::confirm(&state.runtime, &state.store, sealer, user_id, &asked.code, now).await;
    settle(attempt, matches!(confirmed, Ok(Err(NotConfirmed::WrongCode)))).await?;
    match confirmed? {
        Ok(()) => {}
        Err(NotConfirmed::NothingPending) => return Err(ApiError::NothingToConfirm),
        Err(NotConfirmed::WrongCode) => return Err(ApiError::WrongFirstCode),
    }
    let ended = state.store.revoke_sessions_of(user_id, current.session(), now).await?;
    audit::record(Event::MfaEnabled { user_id, client });
    audit::record(Event::SessionRevoked { user_id, client: Some(client), how: "mfa-enabled", count: ended });
    Ok(StatusCode::NO_CONTENT)
}

/// For an account with two-factor login, its second factor (a code or a recovery code), spent
/// here; nothing for another account. Before an action that outlives sessions (a personal
/// access token).
pub(super) async fn code_if_required(
    state: &AppState,
    client: std::net::IpAddr,
    user_id: i64,
    email: &str,
    code: Option<&SecretString>,
) -> Result<(), ApiError> {
    if !second_factor::required(&state.store, user_id).await? {
        return Ok(());
    }
    let code = code.ok_or(ApiError::CodeRequired)?;
    let attempt = admitted(state, client, email).await?;
    let sealer = state.tokens.keys.sealer();
    let verdict = second_factor::check(&state.runtime, &state.store, sealer, user_id, code, unix_now()).await;
    settle(attempt, verdict.as_ref().is_ok_and(|v| *v == Verdict::Refused)).await?;
    if verdict? == Verdict::Refused {
        audit::record(Event::MfaFailed { user_id, client });
        return Err(ApiError::BadSecondFactor);
    }
    Ok(())
}

/// A code check outside the login, admitted by the account's login throttle like a login
/// attempt: a wrong code counts as a failed login, a right one clears nothing.
async fn admitted(state: &AppState, client: std::net::IpAddr, email: &str) -> Result<AdmittedLogin, ApiError> {
    let key = crate::store::email_key(email);
    match state.throttle.admit_login(&state.store, key, client).await? {
        Gate::Open(attempt) => Ok(attempt),
        Gate::Throttled { retry_after } => Err(ApiError::too_many_logins(retry_after)),
        Gate::Crowded { on } => Err(ApiError::too_many_logins_at_once(on)),
    }
}

async fn settle(attempt: AdmittedLogin, wrong: bool) -> Result<(), ApiError> {
    if wrong {
        attempt.failed().await?
    } else {
        attempt.withdrawn().await?
    }
    Ok(())
}

/// The password and a code, checked before turning off two-factor login or renewing the codes.
async fn password_and_code(
    state: &AppState,
    client: std::net::IpAddr,
    current: &super::CurrentUser,
    asked: &PasswordAndCode,
) -> Result<(), ApiError> {
    let user = &current.user;
    if !second_factor::required(&state.store, user.id).await? {
        return Err(ApiError::SecondFactorOff);
    }
    super::password::confirm(state, client, user, &asked.password, "The password is incorrect").await?;
    code_if_required(state, client, user.id, &user.email, Some(&asked.code)).await
}

/// Turn off two-factor login (the password and a code, or a recovery code).
#[utoipa::path(
    delete,
    path = "/users/me/2fa",
    operation_id = "disable_second_factor",
    tag = "two-factor",
    security(("OAuth2PasswordBearer" = [])),
    request_body = PasswordAndCode,
    responses(
        (status = 204, description = "Off; logins need the password only"),
        (status = 400, description = "The password is wrong", body = ErrorBody),
        (status = 401, description = "A wrong, stale or used code; or no valid token", body = ErrorBody),
        (status = 403, description = "The caller is not a password login", body = ErrorBody),
        (status = 409, description = "Two-factor login is not on", body = ErrorBody),
        (status = 422, description = "The body is not acceptable", body = ErrorBody),
        (status = 429, description = "Too many failed password checks", body = ErrorBody),
        (status = 503, description = "Busy or a dependency is unavailable; try again", body = ErrorBody),
    )
)]
#[tracing::instrument(name = "disable_second_factor", skip_all)]
pub async fn disable(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    PasswordLogin(current): PasswordLogin,
    ApiJson(asked): ApiJson<PasswordAndCode>,
) -> Result<StatusCode, ApiError> {
    password_and_code(&state, client, &current, &asked).await?;
    state.store.remove_second_factor(current.user.id).await?;
    audit::record(Event::MfaDisabled { user_id: current.user.id, client: Some(client), how: "self" });
    Ok(StatusCode::NO_CONTENT)
}

/// Ten new recovery codes (the password and a code); the old ones no longer work.
#[utoipa::path(
    post,
    path = "/users/me/2fa/recovery-codes",
    operation_id = "renew_recovery_codes",
    tag = "two-factor",
    security(("OAuth2PasswordBearer" = [])),
    request_body = PasswordAndCode,
    responses(
        (status = 200, description = "The new codes, shown this once", body = RecoveryCodesOut),
        (status = 400, description = "The password is wrong", body = ErrorBody),
        (status = 401, description = "A wrong, stale or used code; or no valid token", body = ErrorBody),
        (status = 403, description = "The caller is not a password login", body = ErrorBody),
        (status = 409, description = "Two-factor login is not on", body = ErrorBody),
        (status = 422, description = "The body is not acceptable", body = ErrorBody),
        (status = 429, description = "Too many failed password checks", body = ErrorBody),
        (status = 501, description = "The serving auth component cannot make recovery codes", body = ErrorBody),
        (status = 503, description = "Busy or a dependency is unavailable; try again", body = ErrorBody),
    )
)]
#[tracing::instrument(name = "renew_recovery_codes", skip_all)]
pub async fn renew_recovery_codes(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    PasswordLogin(current): PasswordLogin,
    ApiJson(asked): ApiJson<PasswordAndCode>,
) -> Result<Json<RecoveryCodesOut>, ApiError> {
    password_and_code(&state, client, &current, &asked).await?;
    let made = state.runtime.new_recovery_codes().await.map_err(SecondFactorError::from)?;
    if !state.store.replace_recovery_codes(current.user.id, &made.hashes).await? {
        return Err(ApiError::SecondFactorOff);
    }
    Ok(Json(RecoveryCodesOut { recovery_codes: made.codes }))
}
