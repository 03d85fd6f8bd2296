//! `loom whoami`

use std::time::SystemTime;

use loom_cli::session;

use super::{Context, say};
use crate::cli::WhoamiArgs;
use crate::failure::Failure;

pub async fn run(context: &mut Context, args: WhoamiArgs) -> Result<(), Failure> {
    let (account, authorized) = context.with_login(async |client| client.me().await).await?;
    let token_expires = session::expiry(secrecy::ExposeSecret::expose_secret(&authorized.token));
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
            "expires_at": rfc3339(token_expires),
            "expires_in_seconds": seconds_left(token_expires),
            "session_expires_at": rfc3339(authorized.session_ends),
            "session_expires_in_seconds": seconds_left(authorized.session_ends),
        });
        say(&serde_json::to_string_pretty(&report).expect("a JSON value serialises"));
    } else {
        let expiry = match ends {
            Some(at) => format!("; the session ends {}", session::relative(at, now)),
            None => String::new(),
        };
        say(&format!(
            "Logged in to {} as {} (token from {}){expiry}",
            context.server.url,
            account.email,
            authorized.source.describe()
        ));
    }
    Ok(())
}
