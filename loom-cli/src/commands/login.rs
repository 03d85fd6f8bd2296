//! `loom login`

use std::time::SystemTime;

use loom_cli::api::{ApiClient, MFA_REQUIRED, PAT_PREFIX, is_pat};
use loom_cli::credentials::{self, CredentialStore};
use loom_cli::settings::{Saved, StoredLogin};
use secrecy::{ExposeSecret, SecretString};

use super::auth::new_login;
use super::{Context, TOKEN_ENV, email_or_ask, read_password, say, token_from_env, warn};
use crate::cli::LoginArgs;
use crate::failure::Failure;

pub async fn run(context: &mut Context, args: LoginArgs) -> Result<(), Failure> {
    let asked = credentials::asked_for(args.credential_store)?;
    let store = credentials::choose(asked, &context.settings, context.kept_in)?;
    if args.with_token {
        return with_token(context, store).await;
    }
    if let Some(moving) = login_to_move(context, &args, asked) {
        return move_login(context, moving, store);
    }
    let client = ApiClient::new(&context.server.url, None, context.insecure)?;
    // Whether the login can be kept, and may go to this server, is settled before a password
    // is asked for or sent.
    context.settings.check_writable()?;
    context.server.confirm_for_password(&context.known)?;
    let email = email_or_ask(args.username, "--username", args.password_stdin)?;
    if store == CredentialStore::Keyring {
        credentials::check_keyring()?;
    }
    let password = read_password(args.password_stdin, &format!("Password for {email} at {}: ", client.server()))?;
    let grant = match client.login(&email, &password, args.otp.as_deref()).await {
        // The password was right, and the account asks for its second factor too.
        Err(error) if error.oauth_error() == Some(MFA_REQUIRED) && args.otp.is_none() => {
            let code = super::two_factor::ask_code(&format!(
                "{email} has two-factor login: add --otp CODE (the code from your authenticator app, or a recovery \
                 code)"
            ))?;
            client.login(&email, &password, Some(&code)).await?
        }
        other => other?,
    };
    let login = new_login(client.server(), &email, &grant);
    let saved = keep(context, &login, store)?;
    if let Some(old) = saved.tightened_from {
        let path = context.settings.path().display();
        warn(&format!("{path} now holds a token, so loom restricted it to mode 0600 (it was {old:o})"));
    }
    if token_from_env().is_some() {
        warn(&format!("{TOKEN_ENV} is set, and loom uses it instead of this login until you unset it"));
    }
    say(&format!("Logged in to {} as {email}{}", client.server(), kept_note(store)));
    Ok(())
}

/// Keeps `login` in `store`, remembers its server, and warns when the settings file holding
/// it is in a git repository.
fn keep(context: &mut Context, login: &StoredLogin, store: CredentialStore) -> Result<Saved, Failure> {
    let (updated, keeping) = credentials::keep(&context.settings, login, store)?;
    context.settings = updated;
    if let Some((entry, reason)) = keeping.left_behind {
        warn(&format!(
            "{reason}, so the previous login's entry ({entry}) is still in the keyring: remove it with a keyring \
             manager or secret-tool; its session stays valid until it expires"
        ));
    }
    context.stored = Some(login.clone());
    context.kept_in = Some(store);
    if let Err(error) = context.known.remember(&login.server) {
        warn(&format!("cannot remember that you logged in to {} from this machine: {error}", login.server));
    }
    if store == CredentialStore::File
        && let Some(exposed) = super::git::exposure(context.settings.path())
    {
        warn(&exposed);
    }
    Ok(keeping.saved)
}

/// How a login line ends: where the tokens went, when not to the settings file.
fn kept_note(store: CredentialStore) -> &'static str {
    match store {
        CredentialStore::Keyring => ", kept in the system keyring",
        CredentialStore::File => "",
    }
}

/// The saved login `loom login --credential-store STORE` (or `LOOM_CREDENTIAL_STORE`) moves
/// rather than replaces: one for this server, of the account named (if one is), kept in the
/// other store, not known to have ended; not when a password comes on standard input.
fn login_to_move(context: &Context, args: &LoginArgs, asked: Option<CredentialStore>) -> Option<StoredLogin> {
    let store = asked.filter(|_| !args.password_stdin)?;
    let login = context.stored.as_ref().filter(|login| login.server == context.server.url)?;
    let same_account = args.username.as_deref().is_none_or(|email| email.trim() == login.email);
    let ended = [login.session_expires_at.as_deref(), login.token_name.as_ref().map(|_| login.expires_at.as_str())]
        .into_iter()
        .flatten()
        .filter_map(|at| humantime::parse_rfc3339(at).ok())
        .any(|at| at <= SystemTime::now());
    (context.kept_in != Some(store) && same_account && !ended).then(|| login.clone())
}

/// Moves the saved login to `store`, deleting the copy it leaves: nothing is asked or sent.
fn move_login(context: &mut Context, login: StoredLogin, store: CredentialStore) -> Result<(), Failure> {
    let from = context.kept_in.unwrap_or_default().place(context.settings.path());
    if store == CredentialStore::File {
        context.settings.check_writable()?;
    }
    keep(context, &login, store)?;
    let to = store.place(context.settings.path());
    say(&format!("Moved the login for {} at {} from {from} to {to}", login.email, login.server));
    Ok(())
}

/// `loom login --with-token`: a personal access token from standard input, checked with the
/// server (which names it and its expiry), kept as this machine's login.
async fn with_token(context: &mut Context, store: CredentialStore) -> Result<(), Failure> {
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
    let source = super::TokenSource::Saved(context.saved_place());
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
    if store == CredentialStore::Keyring {
        credentials::check_keyring()?;
    }
    keep(context, &login, store)?;
    say(&format!(
        "Logged in to {} as {} with the personal access token '{}'{} (it expires on {})",
        client.server(),
        account.email,
        held.name,
        kept_note(store),
        held.expires_at.get(..10).unwrap_or(&held.expires_at)
    ));
    super::tokens::warn_if_expiring(&held.name, &held.expires_at);
    Ok(())
}
