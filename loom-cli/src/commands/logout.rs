//! `loom logout`

use loom_cli::api::{ApiClient, ApiError};
use loom_cli::known::KnownServers;
use loom_cli::settings::{SettingsFile, StoredLogin};

use super::{NamedBy, Server, TOKEN_ENV, TokenSource, say, token_from_env, warn};
use crate::cli::LogoutArgs;
use crate::failure::Failure;

pub async fn run(
    settings: &mut SettingsFile,
    server: &Server,
    stored: Option<&StoredLogin>,
    known: &KnownServers,
    insecure: bool,
    args: LogoutArgs,
) -> Result<(), Failure> {
    match stored {
        Some(login) => {
            // Revoke first (where the token may go); forget it locally whatever the server says.
            let named = match server.url == login.server {
                true => server.named.clone(),
                false => NamedBy::File(settings.path().to_owned()),
            };
            let saved = Server { url: login.server.clone(), named };
            let source = TokenSource::Saved(settings.path().to_owned());
            let revoked = match saved.check_for_token(&source, known) {
                Err(refusal) => Err(Err(refusal)),
                Ok(()) => {
                    let token = secrecy::SecretString::from(login.access_token.trim());
                    match ApiClient::new(&login.server, Some(token), insecure) {
                        Ok(client) => client.logout(args.all).await.map_err(Ok),
                        Err(error) => Err(Ok(error)),
                    }
                }
            };
            let (updated, _) = settings.update(|settings| {
                settings.clear_login();
            })?;
            *settings = updated;
            match revoked {
                Ok(()) if args.all => say(&format!("Logged out of {} everywhere", login.server)),
                Ok(()) => say(&format!("Logged out of {}", login.server)),
                // Expired or revoked already: there was nothing left to revoke.
                Err(Ok(ApiError::TokenRefused { .. })) => say(&format!("Logged out of {}", login.server)),
                Err(Ok(error)) => {
                    say(&format!("Logged out of {} on this machine", login.server));
                    warn(&format!("the server did not revoke the token, which stays valid until it expires: {error}"));
                }
                Err(Err(_)) => {
                    say(&format!("Logged out of {} on this machine", login.server));
                    warn(&format!(
                        "the token was not sent to {}, which you have not logged in to from this machine, so it was \
                         not revoked there",
                        login.server
                    ));
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
