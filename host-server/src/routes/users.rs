//! `POST /users/`: register an account.

use axum::extract::State;
use axum::http::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::error::too_long_password;
use super::extract::ApiJson;
use super::{ApiError, ClientAddr, MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARS, UserOut};
use crate::state::AppState;
use crate::store::Admission;
use crate::tokens::unix_now;
use zxcvbn::matching::patterns::MatchPattern;

#[derive(Deserialize)]
pub struct NewUser {
    email: String,
    /// Redacted in `Debug`, wiped from memory when dropped.
    password: SecretString,
}

#[tracing::instrument(name = "register", skip_all)]
pub async fn register(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    ApiJson(new): ApiJson<NewUser>,
) -> Result<(StatusCode, axum::Json<UserOut>), ApiError> {
    let email = crate::email::normalize(&new.email)
        .map_err(|reason| ApiError::Validation(format!("email is not a valid email address: {reason}")))?;
    validate_password(new.password.expose_secret())?;
    // Refuse a taken address before paying for a hash; the unique index still
    // decides races between concurrent registrations.
    if state.store.user_by_email(&email).await?.is_some() {
        return Err(ApiError::EmailTaken);
    }
    let allowance = state.throttle.signups_per_address;
    if let Admission::Throttled { retry_after } =
        state.store.admit_signup(&client.to_string(), unix_now(), allowance).await?
    {
        tracing::warn!(%client, retry_after, "throttled a registration");
        return Err(ApiError::too_many_signups(retry_after));
    }
    let hash = state.runtime.hash_password(new.password).await?;
    let user = state.store.create_user(&email, &hash).await?;
    tracing::info!(user_id = user.id, "registered a new account");
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
    use super::is_common;

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
