//! The user's Loom settings file (`dev-automation.config.json`), which also
//! holds the login under one key, `"auth"`.
//!
//! The file is the user's whole Loom configuration, so it is handled with care:
//! every other key and the key order are kept, a file that is not valid JSON is
//! refused and left byte-for-byte untouched, writes are atomic (temporary file
//! in the same directory, fsync, rename), and a file holding a token is made
//! readable by its owner only.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::durable;

/// The key the login lives under.
pub const AUTH_KEY: &str = "auth";
/// The settings file's name, in the project directory.
pub const DEFAULT_FILE: &str = "dev-automation.config.json";

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{path}: invalid JSON at line {line} column {column}")]
    InvalidJson { path: PathBuf, line: usize, column: usize },
    #[error("{path}: expected a JSON object at the top level")]
    NotAnObject { path: PathBuf },
    #[error("{path}: the \"{AUTH_KEY}\" entry is not a login loom understands; fix or remove it")]
    InvalidAuth { path: PathBuf },
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot save {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

/// A login as stored in the settings file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredLogin {
    pub server: String,
    pub email: String,
    pub access_token: String,
    pub token_type: String,
    /// When the token expires, RFC 3339 (UTC).
    pub expires_at: String,
}

/// What saving changed beyond the content.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Saved {
    /// The file's previous mode, when saving made it owner-only.
    pub tightened_from: Option<u32>,
}

/// The settings file, loaded whole.
#[derive(Debug)]
pub struct SettingsFile {
    path: PathBuf,
    root: Map<String, Value>,
    /// The existing file's permission bits, if it exists.
    mode: Option<u32>,
}

impl SettingsFile {
    /// Loads `path`; a missing file is an empty configuration (created on save).
    pub fn load(path: &Path) -> Result<Self, SettingsError> {
        // Write through symlinks rather than replacing them.
        let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self { path, root: Map::new(), mode: None });
            }
            Err(source) => return Err(SettingsError::Read { path, source }),
        };
        let mode = std::fs::metadata(&path).ok().map(|m| m.permissions().mode() & 0o7777);
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| SettingsError::InvalidJson {
            path: path.clone(),
            line: e.line(),
            column: e.column(),
        })?;
        let Value::Object(root) = value else {
            return Err(SettingsError::NotAnObject { path });
        };
        Ok(Self { path, root, mode })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stored login, if any.
    pub fn login(&self) -> Result<Option<StoredLogin>, SettingsError> {
        match self.root.get(AUTH_KEY) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => serde_json::from_value(value.clone())
                .map(Some)
                .map_err(|_| SettingsError::InvalidAuth { path: self.path.clone() }),
        }
    }

    /// Replaces the stored login, keeping the key's place when it had one.
    pub fn set_login(&mut self, login: &StoredLogin) {
        let value = serde_json::to_value(login).expect("a login serialises to JSON");
        match self.root.get_mut(AUTH_KEY) {
            Some(slot) => *slot = value,
            None => {
                self.root.insert(AUTH_KEY.to_owned(), value);
            }
        }
    }

    /// Removes the stored login; whether there was one.
    pub fn clear_login(&mut self) -> bool {
        self.root.shift_remove(AUTH_KEY).is_some()
    }

    /// Applies `change` to the file as it is on disk now and saves it, under an
    /// exclusive lock on its directory: edits made since it was first read (say,
    /// while `loom login` waited for the server) are kept, and two `loom`s never
    /// write at once.
    pub fn update(&self, change: impl FnOnce(&mut Self)) -> Result<(Self, Saved), SettingsError> {
        let dir = self.path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let lock_error = |source| SettingsError::Write { path: self.path.clone(), source };
        let lock = std::fs::File::open(dir).map_err(lock_error)?;
        lock.lock().map_err(lock_error)?;
        let mut fresh = Self::load(&self.path)?;
        change(&mut fresh);
        let saved = fresh.save()?;
        drop(lock);
        Ok((fresh, saved))
    }

    /// Writes the file atomically: the old content or the new, never half of either.
    pub fn save(&mut self) -> Result<Saved, SettingsError> {
        let write_error = |source| SettingsError::Write { path: self.path.clone(), source };
        let holds_token = self.root.contains_key(AUTH_KEY);
        let mode = match (holds_token, self.mode) {
            (true, _) | (false, None) => 0o600,
            (false, Some(mode)) => mode,
        };
        let mut text = serde_json::to_string_pretty(&self.root).expect("settings serialise to JSON");
        text.push('\n');
        durable::write_atomic(&self.path, text.as_bytes(), mode).map_err(write_error)?;
        let saved = Saved { tightened_from: self.mode.filter(|old| holds_token && old & 0o077 != 0) };
        self.mode = Some(mode);
        Ok(saved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login() -> StoredLogin {
        StoredLogin {
            server: "http://127.0.0.1:8000".into(),
            email: "ada@example.com".into(),
            access_token: "a.b.c".into(),
            token_type: "bearer".into(),
            expires_at: "2026-11-25T10:00:00Z".into(),
        }
    }

    #[test]
    fn keeps_other_keys_in_order_and_restricts_the_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DEFAULT_FILE);
        std::fs::write(&path, r#"{"zeta": 1, "alpha": {"nested": [1, 2]}, "mid": "x"}"#).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut settings = SettingsFile::load(&path).unwrap();
        settings.set_login(&login());
        assert_eq!(settings.save().unwrap(), Saved { tightened_from: Some(0o644) });
        let text = std::fs::read_to_string(&path).unwrap();
        let keys: Vec<String> = serde_json::from_str::<Map<String, Value>>(&text).unwrap().keys().cloned().collect();
        assert_eq!(keys, ["zeta", "alpha", "mid", "auth"]);
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(SettingsFile::load(&path).unwrap().login().unwrap(), Some(login()));

        let mut settings = SettingsFile::load(&path).unwrap();
        assert!(settings.clear_login());
        settings.save().unwrap();
        let keys: Vec<String> = serde_json::from_str::<Map<String, Value>>(&std::fs::read_to_string(&path).unwrap())
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(keys, ["zeta", "alpha", "mid"]);
    }

    #[test]
    fn an_update_applies_to_what_is_on_disk_now() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DEFAULT_FILE);
        std::fs::write(&path, r#"{"first": 1}"#).unwrap();
        let earlier = SettingsFile::load(&path).unwrap();
        // Someone edits the file after loom read it.
        std::fs::write(&path, r#"{"first": 1, "added_meanwhile": true}"#).unwrap();
        let (updated, _) = earlier.update(|settings| settings.set_login(&login())).unwrap();
        assert_eq!(updated.login().unwrap(), Some(login()));
        let text = std::fs::read_to_string(&path).unwrap();
        let keys: Vec<String> = serde_json::from_str::<Map<String, Value>>(&text).unwrap().keys().cloned().collect();
        assert_eq!(keys, ["first", "added_meanwhile", "auth"]);
    }

    #[test]
    fn invalid_json_is_refused_with_its_position() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DEFAULT_FILE);
        std::fs::write(&path, "{\n  \"a\": 1,\n  oops\n}").unwrap();
        let error = SettingsFile::load(&path).unwrap_err();
        assert!(matches!(error, SettingsError::InvalidJson { line: 3, column: 3, .. }), "{error:?}");
        assert!(error.to_string().ends_with("invalid JSON at line 3 column 3"), "{error}");
        std::fs::write(&path, "[1, 2]").unwrap();
        assert!(matches!(SettingsFile::load(&path), Err(SettingsError::NotAnObject { .. })));
    }

    #[test]
    fn a_missing_file_is_created_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DEFAULT_FILE);
        let mut settings = SettingsFile::load(&path).unwrap();
        assert_eq!(settings.login().unwrap(), None);
        settings.set_login(&login());
        settings.save().unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file is left behind");
    }

    #[test]
    fn saving_through_a_symlink_keeps_the_link() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.json");
        let link = dir.path().join(DEFAULT_FILE);
        std::fs::write(&real, r#"{"project_name": "demo"}"#).unwrap();
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let mut settings = SettingsFile::load(&link).unwrap();
        settings.set_login(&login());
        settings.save().unwrap();
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert!(std::fs::read_to_string(&real).unwrap().contains("access_token"));
    }
}
