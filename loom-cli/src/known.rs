//! The servers this user has logged in to from this machine, kept in the user's own
//! configuration (`$XDG_CONFIG_HOME/loom/known-servers.json`, else
//! `~/.config/loom/known-servers.json`), never in a project.
//!
//! A project's settings file travels with the project (a clone, a pull request): a server it
//! names is the project's word, not the user's. loom sends a password or a token only to a
//! server the user named (`--server`, `LOOM_SERVER`) or has logged in to from this machine
//! before, which is what this file remembers, like ssh's `known_hosts`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::durable;
use crate::settings::SettingsError;

/// The file's name under loom's configuration directory.
const FILE: &str = "known-servers.json";

#[derive(Debug, Default, Serialize, Deserialize)]
struct Contents {
    servers: Vec<String>,
}

/// The servers this user has logged in to from this machine.
#[derive(Debug)]
pub struct KnownServers {
    /// `None` when the user has no home to keep it in: nothing is known then.
    path: Option<PathBuf>,
    servers: Vec<String>,
}

/// loom's directory in the user's configuration (`$XDG_CONFIG_HOME/loom`, else
/// `~/.config/loom`), when the user has one.
pub fn user_config_dir() -> Option<PathBuf> {
    config_dir(|name| std::env::var(name).ok())
}

/// loom's directory in the user's configuration, from `env`.
fn config_dir(env: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let set = |name: &str| env(name).filter(|v| !v.is_empty()).map(PathBuf::from).filter(|p| p.is_absolute());
    set("XDG_CONFIG_HOME").or_else(|| set("HOME").map(|home| home.join(".config"))).map(|dir| dir.join("loom"))
}

impl KnownServers {
    /// Reads the user's file (none yet: nothing is known).
    pub fn load() -> Result<Self, SettingsError> {
        Self::load_from(config_dir(|name| std::env::var(name).ok()).map(|dir| dir.join(FILE)))
    }

    fn load_from(path: Option<PathBuf>) -> Result<Self, SettingsError> {
        let Some(path) = path else { return Ok(Self { path: None, servers: Vec::new() }) };
        let servers =
            match crate::settings::read_bounded(&path) {
                Ok(bytes) => {
                    let contents: Contents = serde_json::from_slice(&bytes).map_err(|e| {
                        SettingsError::InvalidJson { path: path.clone(), line: e.line(), column: e.column() }
                    })?;
                    contents.servers
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(reason) => return Err(SettingsError::Read { path, reason }),
            };
        Ok(Self { path: Some(path), servers })
    }

    /// Whether this user has logged in to `server` (a normalised URL) from this machine.
    pub fn contains(&self, server: &str) -> bool {
        self.servers.iter().any(|known| known == server)
    }

    /// Remembers `server` (after a login there), keeping what other `loom`s added meanwhile.
    pub fn remember(&self, server: &str) -> Result<(), SettingsError> {
        let Some(path) = &self.path else { return Ok(()) };
        let write_error = |reason| SettingsError::Write { path: path.clone(), reason };
        let dir = path.parent().unwrap_or(Path::new("."));
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(write_error)?;
        }
        let lock = std::fs::File::open(dir).map_err(write_error)?;
        lock.lock().map_err(write_error)?;
        let mut fresh = Self::load_from(Some(path.clone()))?;
        if !fresh.contains(server) {
            fresh.servers.push(server.to_owned());
            let mut text = serde_json::to_string_pretty(&Contents { servers: fresh.servers })
                .expect("a list of strings serialises");
            text.push('\n');
            durable::write_atomic(path, text.as_bytes(), 0o600).map_err(write_error)?;
        }
        drop(lock);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_servers_are_known_from_then_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("loom").join(FILE);
        let known = KnownServers::load_from(Some(path.clone())).unwrap();
        assert!(!known.contains("https://auth.example.com"));
        known.remember("https://auth.example.com").unwrap();
        known.remember("https://auth.example.com").unwrap();
        let again = KnownServers::load_from(Some(path.clone())).unwrap();
        assert!(again.contains("https://auth.example.com") && !again.contains("https://auth.example.org"));
        assert_eq!(again.servers.len(), 1);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn the_file_lives_in_the_users_configuration() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
        };
        assert_eq!(config_dir(env(&[("XDG_CONFIG_HOME", "/x"), ("HOME", "/h")])), Some(PathBuf::from("/x/loom")));
        assert_eq!(config_dir(env(&[("HOME", "/h")])), Some(PathBuf::from("/h/.config/loom")));
        assert_eq!(config_dir(env(&[("XDG_CONFIG_HOME", "relative"), ("HOME", "/h")])), Some("/h/.config/loom".into()));
        assert_eq!(config_dir(env(&[])), None);
    }
}
