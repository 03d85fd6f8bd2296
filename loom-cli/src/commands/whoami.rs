//! `loom whoami`

use std::time::SystemTime;

use loom_cli::api::ApiClient;
use loom_cli::known::KnownServers;
use loom_cli::session;
use loom_cli::settings::{SettingsFile, StoredLogin};

use super::{Server, TokenSource, say};
use crate::cli::WhoamiArgs;
use crate::failure::Failure;

pub async fn run(
    settings: &SettingsFile,
    server: &Server,
    known: &KnownServers,
    insecure: bool,
    stored: Option<&StoredLogin>,
    args: WhoamiArgs,
) -> Result<(), Failure> {
    let (token, source) = TokenSource::pick(settings, &server.url, stored)?;
    server.check_for_token(&source, known)?;
    let expires = session::expiry(secrecy::ExposeSecret::expose_secret(&token));
    let client = ApiClient::new(&server.url, Some(token), insecure)?;
    let account = client.me().await.map_err(|e| source.explain(e))?;
    let now = SystemTime::now();
    if args.json {
        let expires_at = expires.map(|at| humantime::format_rfc3339_seconds(at).to_string());
        let expires_in = expires.map(|at| at.duration_since(now).map_or(0, |left| left.as_secs()));
        let report = serde_json::json!({
            "server": client.server(),
            "id": account.id,
            "email": account.email,
            "username": account.username,
            "is_active": account.is_active,
            "token_source": source.describe(),
            "expires_at": expires_at,
            "expires_in_seconds": expires_in,
        });
        say(&serde_json::to_string_pretty(&report).expect("a JSON value serialises"));
    } else {
        let expiry = match expires {
            Some(at) => format!("; the session expires {}", session::relative(at, now)),
            None => String::new(),
        };
        say(&format!(
            "Logged in to {} as {} (token from {}){expiry}",
            client.server(),
            account.email,
            source.describe()
        ));
    }
    Ok(())
}
