//! `loom logout`

use loom_cli::api::{ApiClient, ApiError};
use loom_cli::settings::{SettingsFile, StoredLogin};
use secrecy::SecretString;

use super::{TOKEN_ENV, say, token_from_env, warn};
use crate::cli::LogoutArgs;
use crate::failure::Failure;

pub async fn run(
    settings: &mut SettingsFile,
    stored: Option<&StoredLogin>,
    insecure: bool,
    args: LogoutArgs,
) -> Result<(), Failure> {
    match stored {
        Some(login) => {
            // Revoke first; forget the token locally whatever the server says.
            let revoked =
                match ApiClient::new(&login.server, Some(SecretString::from(login.access_token.trim())), insecure) {
                    Ok(client) => client.logout(args.all).await,
                    Err(error) => Err(error),
                };
            let (updated, _) = settings.update(|settings| {
                settings.clear_login();
            })?;
            *settings = updated;
            match revoked {
                Ok(()) if args.all => say(&format!("Logged out of {} everywhere", login.server)),
                Ok(()) => say(&format!("Logged out of {}", login.server)),
                // Expired or revoked already: there was nothing left to revoke.
                Err(ApiError::TokenRefused { .. }) => say(&format!("Logged out of {}", login.server)),
                Err(error) => {
                    say(&format!("Logged out of {} on this machine", login.server));
                    warn(&format!("the server did not revoke the token, which stays valid until it expires: {error}"));
                }
            }
        }
        None => say("Not logged in"),
    }
    if token_from_env().is_some() {
        warn(&format!("{TOKEN_ENV} is still set, and loom keeps using it until you unset it"));
    }
    Ok(())
}
