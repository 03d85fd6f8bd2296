//! `loom login`

use loom_cli::api::ApiClient;

use super::auth::new_login;
use super::{Context, TOKEN_ENV, email_or_ask, read_password, say, token_from_env, warn};
use crate::cli::LoginArgs;
use crate::failure::Failure;

pub async fn run(context: &mut Context, args: LoginArgs) -> Result<(), Failure> {
    let client = ApiClient::new(&context.server.url, None, context.insecure)?;
    // Whether the login can be kept, and may go to this server, is settled before a password
    // is asked for or sent.
    context.settings.check_writable()?;
    context.server.confirm_for_password(&context.known)?;
    let email = email_or_ask(args.username, "--username", args.password_stdin)?;
    let password = read_password(args.password_stdin, &format!("Password for {email} at {}: ", client.server()))?;
    let grant = client.login(&email, &password).await?;
    let login = new_login(client.server(), &email, &grant);
    let (updated, saved) = context.settings.update(|settings| settings.set_login(&login))?;
    context.settings = updated;
    if let Err(error) = context.known.remember(client.server()) {
        warn(&format!("cannot remember that you logged in to {} from this machine: {error}", client.server()));
    }
    let path = context.settings.path();
    if let Some(exposed) = super::git::exposure(path) {
        warn(&exposed);
    }
    if let Some(old) = saved.tightened_from {
        warn(&format!("{} now holds a token, so loom restricted it to mode 0600 (it was {old:o})", path.display()));
    }
    if token_from_env().is_some() {
        warn(&format!("{TOKEN_ENV} is set, and loom uses it instead of this login until you unset it"));
    }
    say(&format!("Logged in to {} as {email}", client.server()));
    Ok(())
}
