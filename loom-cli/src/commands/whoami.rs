//! `loom whoami`

use loom_cli::api::ApiClient;
use loom_cli::settings::{SettingsFile, StoredLogin};

use super::{TokenSource, say};
use crate::failure::Failure;

pub async fn run(
    settings: &SettingsFile,
    server: &str,
    insecure: bool,
    stored: Option<&StoredLogin>,
) -> Result<(), Failure> {
    let (token, source) = TokenSource::pick(settings, server, stored)?;
    let client = ApiClient::new(server, Some(token), insecure)?;
    let account = client.me().await.map_err(|e| source.explain(e))?;
    say(&format!("Logged in to {} as {} (token from {})", client.server(), account.email, source.describe()));
    Ok(())
}
