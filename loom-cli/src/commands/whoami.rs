//! `loom whoami`

use loom_cli::api::ApiClient;
use loom_cli::settings::{SettingsFile, StoredLogin};
use secrecy::SecretString;

use super::{TOKEN_ENV, say, token_from_env};
use crate::failure::Failure;

pub async fn run(settings: &SettingsFile, server: &str, stored: Option<&StoredLogin>) -> Result<(), Failure> {
    let (token, source) = match (token_from_env(), stored) {
        (Some(token), _) => (token, TOKEN_ENV.to_owned()),
        (None, Some(login)) if login.server == server => {
            (login.access_token.clone(), settings.path().display().to_string())
        }
        (None, _) => return Err(Failure::LoginRequired("Not logged in. Run 'loom login'.".into())),
    };
    let client = ApiClient::new(server, Some(SecretString::from(token)))?;
    let account = client.me().await?;
    say(&format!("Logged in to {} as {} (token from {source})", client.server(), account.email));
    Ok(())
}
