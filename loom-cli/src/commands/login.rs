//! `loom login`

use loom_cli::api::{ApiClient, PAT_PREFIX, is_pat};
use loom_cli::settings::StoredLogin;
use secrecy::{ExposeSecret, SecretString};

use super::auth::new_login;
use super::{Context, TOKEN_ENV, email_or_ask, read_password, say, token_from_env, warn};
use crate::cli::LoginArgs;
use crate::failure::Failure;

pub async fn run(context: &mut Context, args: LoginArgs) -> Result<(), Failure> {
    if args.with_token {
        return with_token(context).await;
    }
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

/// `loom login --with-token`: a personal access token from standard input, checked with the
/// server (which names it and its expiry), kept as this machine's login.
async fn with_token(context: &mut Context) -> Result<(), Failure> {
    context.settings.check_writable()?;
    context.server.confirm_sending(&context.known, "a personal access token")?;
    let read = crate::prompt::password_from_stdin()
        .map_err(|e| Failure::Usage(e.replace("password", "personal access token")))?;
    let token = read.expose_secret().trim();
    if !is_pat(token) || token.len() != 47 || !token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(Failure::Usage(format!(
            "standard input does not hold a personal access token ({PAT_PREFIX} and 38 letters and digits, as 'loom \
             tokens create' prints it)"
        )));
    }
    let token = SecretString::from(token.to_owned());
    let client = ApiClient::new(&context.server.url, Some(token.clone()), context.insecure)?;
    let source = super::TokenSource::Saved(context.settings.path().to_owned());
    let explain = |error| source.explain_pat(error);
    let account = client.me().await.map_err(explain)?;
    let held = client.current_pat().await.map_err(explain)?;
    let login = StoredLogin {
        server: client.server().to_owned(),
        email: account.email.clone(),
        access_token: token.expose_secret().to_owned(),
        token_type: "personal_access_token".into(),
        expires_at: held.expires_at.clone(),
        refresh_token: None,
        session_expires_at: None,
        token_name: Some(held.name.clone()),
    };
    let (updated, _) = context.settings.update(|settings| settings.set_login(&login))?;
    context.settings = updated;
    if let Err(error) = context.known.remember(client.server()) {
        warn(&format!("cannot remember that you logged in to {} from this machine: {error}", client.server()));
    }
    if let Some(exposed) = super::git::exposure(context.settings.path()) {
        warn(&exposed);
    }
    say(&format!(
        "Logged in to {} as {} with the personal access token '{}' (it expires on {})",
        client.server(),
        account.email,
        held.name,
        held.expires_at.get(..10).unwrap_or(&held.expires_at)
    ));
    super::tokens::warn_if_expiring(&held.name, &held.expires_at);
    Ok(())
}
