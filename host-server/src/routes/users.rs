//! `POST /users/`: register an account.

use axum::extract::State;
use axum::http::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::docs::ErrorBody;
use super::error::too_long_password;
use super::extract::ApiJson;
use super::{ApiError, ClientAddr, MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARS, UserOut};
use crate::state::AppState;
use crate::store::Admission;
use crate::telemetry::audit::{self, Event};
use crate::tokens::unix_now;
use zxcvbn::matching::patterns::MatchPattern;

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

/// Usernames: 3 to 32 ASCII letters, digits, `.`, `-` or `_`; never an `@`, so a
/// login is always either an email or a username.
fn validate_username(username: &str) -> Result<(), ApiError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
    if !(3..=32).contains(&username.len()) || !username.chars().all(allowed) {
        return Err(ApiError::Validation(
            "username must be 3 to 32 letters, digits, '.', '-' or '_' (it cannot contain '@')".into(),
        ));
    }
    Ok(())
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
        (status = 413, description = "The body is larger than 64 KiB", body = ErrorBody),
        (status = 422, description = "Not a JSON object, or a field is not acceptable (the detail says which)",
         body = ErrorBody),
        (status = 429, description = "Too many registrations from this address", body = ErrorBody,
         headers(("Retry-After" = u64, description = "Seconds until a registration may succeed"))),
        (status = 503, description = "Busy or a dependency is unavailable; try again", body = ErrorBody),
    )
)]
#[tracing::instrument(name = "register", skip_all)]
pub async fn register(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    ApiJson(new): ApiJson<NewUser>,
) -> Result<(StatusCode, axum::Json<UserOut>), ApiError> {
    let email = crate::email::normalize(&new.email)
        .map_err(|reason| ApiError::Validation(format!("email is not a valid email address: {reason}")))?;
    if let Some(username) = &new.username {
        validate_username(username)?;
    }
    validate_password(new.password.expose_secret())?;
    // Refuse a taken address or username before paying for a hash; the unique
    // indexes still decide races between concurrent registrations.
    if state.store.user_by_email(&email).await?.is_some() {
        return Err(ApiError::EmailTaken);
    }
    if let Some(username) = &new.username
        && state.store.user_by_username(username).await?.is_some()
    {
        return Err(ApiError::UsernameTaken);
    }
    let allowance = state.throttle.signups_per_address;
    if let Admission::Throttled { retry_after } =
        state.store.admit_signup(&client.to_string(), unix_now(), allowance).await?
    {
        audit::record(Event::SignupThrottled { client });
        return Err(ApiError::too_many_signups(retry_after));
    }
    let hash = state.runtime.hash_password(new.password).await?;
    let user = state.store.create_user(&email, new.username.as_deref(), &hash).await?;
    audit::record(Event::UserCreated { user_id: user.id, client });
    Ok((StatusCode::CREATED, axum::Json(user.into())))
}

fn validate_password(password: &str) -> Result<(), ApiError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(ApiError::Validation(too_long_password()));
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(ApiError::Validation(format!("password must be at least {MIN_PASSWORD_CHARS} characters")));
    }
    if is_common(password) {
        return Err(ApiError::Validation(
            "password is one of the most commonly used passwords, which attackers try first; choose another".into(),
        ));
    }
    Ok(())
}

/// Passwords longer than this are in no list of common ones worth checking
/// (and zxcvbn's work grows with the length).
const COMMON_CHECK_MAX_CHARS: usize = 64;

/// Whether `password` is a known-common one (NIST SP 800-63B §5.1.1.2): the
/// whole of it is an entry of zxcvbn's bundled list of the most used passwords
/// (also reversed or in l33t spelling), or it is guessable in under a thousand
/// tries. No network call.
fn is_common(password: &str) -> bool {
    if password.chars().count() > COMMON_CHECK_MAX_CHARS {
        return false;
    }
    let estimate = zxcvbn::zxcvbn(password, &[]);
    // zxcvbn keeps its `DictionaryType` private; its default variant is the passwords list.
    let whole_listed = matches!(
        estimate.sequence(),
        [only] if matches!(&only.pattern, MatchPattern::Dictionary(d) if d.dictionary_name == Default::default())
    );
    whole_listed || estimate.score() == zxcvbn::Score::Zero
}

#[cfg(test)]
mod tests {
    use super::{is_common, validate_username};

    #[test]
    fn usernames_are_short_plain_names_without_an_at() {
        for good in ["ada", "Ada.Lovelace", "a-b_c.9", &"x".repeat(32)] {
            assert!(validate_username(good).is_ok(), "{good}");
        }
        for bad in ["ab", &"x".repeat(33), "ada@home", "ada lovelace", "adä", "", "a/b"] {
            assert!(validate_username(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_most_used_passwords_are_common_and_passphrases_are_not() {
        for common in ["password", "password1", "12345678", "qwertyuiop", "iloveyou", "drowssap", "p@ssw0rd"] {
            assert!(is_common(common), "{common}");
        }
        for fine in ["correct horse battery staple", "loom-auth is pleasant 2026", "Zq8!vR3#kP"] {
            assert!(!is_common(fine), "{fine}");
        }
    }
}
