//! `POST /users/`: register an account.

use axum::extract::State;
use axum::http::StatusCode;
use secrecy::SecretString;
use serde::Deserialize;

use super::docs::ErrorBody;
use super::extract::ApiJson;
use super::{ApiError, ClientAddr, UserOut};
use crate::state::AppState;
use crate::store::Admission;
use crate::telemetry::audit::{self, Event};
use crate::tokens::unix_now;

/// A new account.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct NewUser {
    /// The account's email address; unique whatever its case.
    #[schema(example = "ada@example.com", format = Email)]
    email: String,
    /// Optional: another name to log in with, unique whatever its case: 3 to 32 letters,
    /// digits, `.`, `-` or `_`.
    #[serde(default)]
    #[schema(example = "ada", pattern = "^[A-Za-z0-9._-]{3,32}$")]
    username: Option<String>,
    /// At least 8 characters and at most 1024 bytes, and not a commonly used password.
    /// Redacted in `Debug`, wiped from memory when dropped.
    #[schema(value_type = String, format = Password, min_length = 8, example = "correct horse battery staple")]
    password: SecretString,
}

/// Register an account.
#[utoipa::path(
    post,
    path = "/users/",
    operation_id = "register_user",
    tag = "accounts",
    request_body = NewUser,
    responses(
        (status = 201, description = "The account was created", body = UserOut),
        (status = 400, description = "The email or the username is taken", body = ErrorBody),
        (status = 403, description = "The operator's policy refused it (`detail` is its reason)", body = ErrorBody),
        (status = 413, description = "The body is larger than 64 KiB", body = ErrorBody),
        (status = 422, description = "Not a JSON object, or a field is not acceptable (the detail says which)",
         body = ErrorBody),
        (status = 429, description = "Too many registrations from this address", body = ErrorBody,
         headers(("Retry-After" = u64, description = "Seconds until a registration may succeed"))),
        (status = 503, description = "Busy, a dependency is unavailable, or the operator's policy could not \
                                      decide; try again", body = ErrorBody),
    )
)]
#[tracing::instrument(name = "register", skip_all)]
pub async fn register(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    ApiJson(new): ApiJson<NewUser>,
) -> Result<(StatusCode, axum::Json<UserOut>), ApiError> {
    // Pasted addresses and names come with spaces around them; none belongs to either.
    let email = crate::accounts::email::normalize(new.email.trim())
        .map_err(|reason| ApiError::Validation(format!("email is not a valid email address: {reason}")))?;
    let username = new.username.as_deref().map(str::trim);
    if let Some(username) = username {
        crate::accounts::username::check(username).map_err(|why| ApiError::Validation(why.into()))?;
    }
    let password = crate::accounts::password::new_password(&new.password)?;
    // Every well-formed attempt counts, "already registered" ones too: that answer tells
    // whether an address has an account, so asking it is rate-limited like registering.
    let allowance = state.throttle.signups_per_address;
    if let Admission::Throttled { retry_after } =
        state.store.admit_signup(&crate::accounts::throttle::address_key(client), unix_now(), allowance).await?
    {
        audit::record(Event::SignupThrottled { client });
        return Err(ApiError::too_many_signups(retry_after));
    }
    // The operator's policy decides before anything tells whether the address has an account.
    let asker = crate::accounts::policy::Asker { address: client, now: unix_now() };
    crate::accounts::policy::registration(state.policy(), &email, username, asker).await?;
    // Refuse a taken address or username before paying for a hash; the unique
    // indexes still decide races between concurrent registrations.
    if state.store.user_by_email(&email).await?.is_some() {
        return Err(ApiError::EmailTaken);
    }
    if let Some(username) = username
        && state.store.user_by_username(username).await?.is_some()
    {
        return Err(ApiError::UsernameTaken);
    }
    let hash = state.runtime.hash_password(password).await?;
    let user = state.store.create_user(&email, username, &hash).await?;
    audit::record(Event::UserCreated { user_id: user.id, client });
    Ok((StatusCode::CREATED, axum::Json(user.into())))
}
