//! `loom whoami`

use std::time::SystemTime;

use loom_cli::session;

use super::{Context, say};
use crate::cli::WhoamiArgs;
use crate::failure::Failure;

pub async fn run(context: &mut Context, args: WhoamiArgs) -> Result<(), Failure> {
    let (account, authorized) = context.with_login(async |client| client.me().await).await?;
    if Context::holds_pat(&authorized) {
        return personal_token(context, &args, &account, &authorized).await;
    }
    let token_expires = session::expiry(secrecy::ExposeSecret::expose_secret(&authorized.token));
    let methods = session::methods(secrecy::ExposeSecret::expose_secret(&authorized.token));
    let two_factors = methods.iter().any(|m| m == "otp");
    // A saved login lasts as long as its session; LOOM_TOKEN as long as its access token.
    let ends = authorized.session_ends.or(token_expires);
    let now = SystemTime::now();
    let seconds_left = |at: Option<SystemTime>| at.map(|at| at.duration_since(now).map_or(0, |left| left.as_secs()));
    let rfc3339 = |at: Option<SystemTime>| at.map(|at| humantime::format_rfc3339_seconds(at).to_string());
    if args.json {
        let report = serde_json::json!({
            "server": context.server.url,
            "id": account.id,
            "email": account.email,
            "username": account.username,
            "is_active": account.is_active,
            "token_source": authorized.source.describe(),
            "credential_store": kept_in(context, &authorized),
            "expires_at": rfc3339(token_expires),
            "expires_in_seconds": seconds_left(token_expires),
            "session_expires_at": rfc3339(authorized.session_ends),
            "session_expires_in_seconds": seconds_left(authorized.session_ends),
            "amr": methods,
            "two_factor": two_factors,
        });
        say(&serde_json::to_string_pretty(&report).expect("a JSON value serialises"));
    } else {
        let expiry = match ends {
            Some(at) => format!("; the session ends {}", session::relative(at, now)),
            None => String::new(),
        };
        let factors = if two_factors { "; logged in with two factors" } else { "" };
        say(&format!(
            "Logged in to {} as {} (token from {}){expiry}{factors}",
            context.server.url,
            account.email,
            authorized.source.describe()
        ));
    }
    Ok(())
}

/// `whoami` for a personal access token: which token, and when it expires (with a warning
/// when that is within a week).
async fn personal_token(
    context: &mut Context,
    args: &WhoamiArgs,
    account: &loom_cli::api::Account,
    authorized: &super::auth::Authorized,
) -> Result<(), Failure> {
    let client = loom_cli::api::ApiClient::new(&context.server.url, Some(authorized.token.clone()), context.insecure)?;
    let held = client.current_pat().await.map_err(|e| authorized.source.explain_pat(e))?;
    if args.json {
        let report = serde_json::json!({
            "server": context.server.url,
            "id": account.id,
            "email": account.email,
            "username": account.username,
            "is_active": account.is_active,
            "token_source": authorized.source.describe(),
            "credential_store": kept_in(context, authorized),
            "personal_access_token": held,
            "expires_at": held.expires_at,
        });
        say(&serde_json::to_string_pretty(&report).expect("a JSON value serialises"));
    } else {
        let ends = humantime::parse_rfc3339(&held.expires_at)
            .map(|at| session::relative(at, SystemTime::now()))
            .unwrap_or_else(|_| held.expires_at.clone());
        say(&format!(
            "Logged in to {} as {} with the personal access token '{}' (from {}); it expires {ends}, on {}",
            context.server.url,
            account.email,
            held.name,
            authorized.source.describe(),
            held.expires_at.get(..10).unwrap_or(&held.expires_at)
        ));
    }
    super::tokens::warn_if_expiring(&held.name, &held.expires_at);
    Ok(())
}

/// Where the login in use is kept ("file" or "keyring"); `None` for `LOOM_TOKEN`.
fn kept_in(context: &Context, authorized: &super::auth::Authorized) -> Option<&'static str> {
    match authorized.source {
        super::TokenSource::Saved(_) => context.kept_in.map(|store| store.name()),
        super::TokenSource::Env => None,
    }
}
