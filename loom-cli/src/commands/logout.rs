//! `loom logout`

use loom_cli::api::{ApiClient, ApiError};
use loom_cli::credentials::{self, CredentialError};
use secrecy::SecretString;

use super::{Context, TOKEN_ENV, TokenSource, say, token_from_env, warn};
use crate::cli::LogoutArgs;
use crate::failure::Failure;

/// What the server said to ending the session.
enum Ended {
    /// Ended now.
    Now,
    /// There was nothing left to end: expired, revoked or logged out already.
    Already,
    /// Not sent: the server is not one this user named or logged in to from this machine.
    NotSent,
    /// The server could not be asked, or failed.
    Failed(String),
}

/// Ends the session on the server (its refresh token and access tokens; `--all`: every session
/// of the account), then forgets the login here, whatever the server said.
pub async fn run(context: &mut Context, args: LogoutArgs) -> Result<(), Failure> {
    let LogoutArgs { all } = args;
    let login = context.stored.clone().filter(|login| login.server == context.server.url);
    match login {
        Some(login) if all && login.token_name.is_some() => {
            return Err(Failure::Usage(format!(
                "--all ends every session of the account, which needs a password login, and this machine's login is \
                 the personal access token '{}': 'loom logout' forgets it here",
                login.token_name.as_deref().unwrap_or_default()
            )));
        }
        // A personal access token is forgotten here, not revoked: other machines may hold it.
        Some(login) if login.token_name.is_some() => {
            forget(context)?;
            say(&format!("Logged out of {} on this machine", login.server));
            warn(&format!(
                "the personal access token '{}' stays valid; 'loom tokens revoke {}' (from a password login) ends it",
                login.token_name.as_deref().unwrap_or_default(),
                login.token_name.as_deref().unwrap_or_default()
            ));
        }
        Some(login) => {
            // Counted first: a global logout ends the session that could ask.
            let tokens = if all { context.live_pats().await } else { None };
            let source = TokenSource::Saved(context.saved_place());
            let ended = match context.server.check_for_token(&source, &context.known) {
                Err(_) => Ended::NotSent,
                Ok(()) => match (&login.refresh_token, all) {
                    // The refresh token ends its session without an access token (RFC 7009).
                    (Some(refresh), false) => revoke(context, refresh).await,
                    _ => match context.authorize_saved().await {
                        Ok(authorized) => {
                            let client = ApiClient::new(&login.server, Some(authorized.token), context.insecure);
                            match client {
                                Ok(client) => answer(client.logout(all).await),
                                Err(error) => Ended::Failed(error.to_string()),
                            }
                        }
                        Err(Failure::LoginRequired(_)) => Ended::Already,
                        Err(other) => Ended::Failed(other.to_string()),
                    },
                },
            };
            forget(context)?;
            let server = &login.server;
            match ended {
                Ended::Now if all => {
                    say(&format!("Logged out of {server} everywhere"));
                    super::tokens::say_tokens_stay(tokens);
                }
                Ended::Now | Ended::Already => say(&format!("Logged out of {server}")),
                Ended::Failed(error) => {
                    say(&format!("Logged out of {server} on this machine"));
                    warn(&format!("the server did not end the session, which stays valid until it expires: {error}"));
                }
                Ended::NotSent => {
                    say(&format!("Logged out of {server} on this machine"));
                    warn(&format!(
                        "the token was not sent to {server}, which you have not logged in to from this machine, so \
                         it was not revoked there"
                    ));
                }
            }
        }
        // A marker of a login the keyring no longer holds, or holds unreadable, is cleared (its
        // entry removed); a keyring that cannot be reached is said, and the marker stays.
        None if credentials::marker(&context.settings).is_some_and(|m| m.server == context.server.url) => match context
            .unread
            .take()
        {
            Some(error @ CredentialError::Keyring { .. }) => return Err(error.into()),
            Some(_) => {
                forget(context)?;
                say("Logged out on this machine (the keyring's entry was not a login loom could read; it is removed)");
            }
            None => {
                forget(context)?;
                say("Not logged in (the keyring no longer held the saved login; loom removed its mention)");
            }
        },
        None => say("Not logged in"),
    }
    if token_from_env().is_some() {
        warn(&format!("{TOKEN_ENV} is still set, and loom keeps using it until you unset it"));
    }
    Ok(())
}

/// Removes the saved login from where it is kept (the keyring entry first, then the file).
fn forget(context: &mut Context) -> Result<(), Failure> {
    let mut locked = context.settings.lock()?;
    credentials::forget(&mut locked.file)?;
    context.settings = locked.into_file();
    context.stored = None;
    context.kept_in = None;
    Ok(())
}

async fn revoke(context: &Context, refresh: &str) -> Ended {
    match ApiClient::new(&context.server.url, None, context.insecure) {
        Ok(client) => answer(client.revoke(&SecretString::from(refresh.to_owned()), "refresh_token").await),
        Err(error) => Ended::Failed(error.to_string()),
    }
}

fn answer(result: Result<(), ApiError>) -> Ended {
    match result {
        Ok(()) => Ended::Now,
        Err(ApiError::TokenRefused { .. }) => Ended::Already,
        Err(error) => Ended::Failed(error.to_string()),
    }
}
