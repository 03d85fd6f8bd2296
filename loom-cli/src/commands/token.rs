//! `loom token`

use loom_cli::settings::{SettingsFile, StoredLogin};
use secrecy::ExposeSecret;

use super::{TokenSource, say};
use crate::failure::Failure;

pub fn run(settings: &SettingsFile, server: &str, stored: Option<&StoredLogin>) -> Result<(), Failure> {
    let (token, source) = TokenSource::pick(settings, server, stored)?;
    source.refuse_expired(&token, server)?;
    say(token.expose_secret());
    Ok(())
}
