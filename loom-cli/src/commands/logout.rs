//! `loom logout`

use loom_cli::settings::{SettingsFile, StoredLogin};

use super::{TOKEN_ENV, say, token_from_env, warn};
use crate::failure::Failure;

pub fn run(settings: &mut SettingsFile, stored: Option<&StoredLogin>) -> Result<(), Failure> {
    match stored {
        Some(login) => {
            settings.clear_login();
            settings.save()?;
            say(&format!("Logged out of {}", login.server));
        }
        None => say("Not logged in"),
    }
    if token_from_env().is_some() {
        warn(&format!("{TOKEN_ENV} is still set, and loom keeps using it until you unset it"));
    }
    Ok(())
}
