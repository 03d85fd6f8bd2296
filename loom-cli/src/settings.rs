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
    // The I/O error is part of the sentence, not a `source`: a chain would say it twice.
    #[error("cannot read {path}: {reason}")]
    Read { path: PathBuf, reason: std::io::Error },
    #[error("cannot save {path}: {reason}")]
    Write { path: PathBuf, reason: std::io::Error },
    #[error(
        "cannot keep a login in {path} ({reason}), so nothing was sent to the server; choose another file with \
         --config or LOOM_CONFIG"
    )]
    Unwritable { path: PathBuf, reason: std::io::Error },
    /// Another process kept the settings' lock past loom's patience.
    #[error(transparent)]
    Locked(crate::lock::LockError),
}

/// A login as stored in the settings file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredLogin {
    pub server: String,
    pub email: String,
    pub access_token: String,
    pub token_type: String,
    /// When the access token expires, RFC 3339 (UTC).
    pub expires_at: String,
    /// The refresh token that renews the access token; none from a server without sessions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// When the session ends unless refreshed, RFC 3339 (UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_expires_at: Option<String>,
    /// A login with a personal access token (`loom login --with-token`): the token's name.
    /// `access_token` then holds the personal access token and `expires_at` its expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_name: Option<String>,
}

/// Where the login's tokens are: in this file, or in the system keyring with only this marker
/// (`{"server", "email", "credential_store": "keyring"}`) in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SavedAuth {
    Here(StoredLogin),
    Keyring(KeyringMarker),
}

/// The settings file's note of a login kept in the system keyring: which server and account,
/// never a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyringMarker {
    pub server: String,
    pub email: String,
    /// Always [`KeyringMarker::STORE`].
    pub credential_store: String,
    /// Which of the account's entries is this login's (each project's login has its own).
    pub entry: String,
}

impl KeyringMarker {
    pub const STORE: &str = "keyring";

    pub fn new(server: &str, email: &str, entry: &str) -> Self {
        Self {
            server: server.to_owned(),
            email: email.to_owned(),
            credential_store: Self::STORE.to_owned(),
            entry: entry.to_owned(),
        }
    }
}

/// What saving changed beyond the content.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Saved {
    /// The file's previous mode, when saving made it owner-only.
    pub tightened_from: Option<u32>,
}

/// The settings file read under its lock: nobody else writes it until this is dropped.
#[derive(Debug)]
pub struct Locked {
    pub file: SettingsFile,
    _lock: std::fs::File,
}

impl Locked {
    /// The file, letting the lock go.
    pub fn into_file(self) -> SettingsFile {
        self.file
    }
}

/// The settings file, loaded whole.
#[derive(Debug)]
pub struct SettingsFile {
    path: PathBuf,
    root: Map<String, Value>,
    /// The existing file's permission bits, if it exists.
    mode: Option<u32>,
    /// Whether the file starts with a UTF-8 byte order mark, which is kept when writing.
    bom: bool,
}

/// The UTF-8 byte order mark some editors write first (RFC 8259 §8.1 lets a parser skip it).
const BOM: &[u8] = b"\xEF\xBB\xBF";
/// Symbolic links followed at most, as the kernel does (`ELOOP` beyond).
const MAX_LINKS: usize = 40;

/// Largest settings file loom reads; a settings file is a few kilobytes.
const MAX_FILE_BYTES: u64 = 16 << 20;

/// The regular file at `path`, whole, refusing what no settings file is: a device, a pipe or a
/// directory (`/dev/zero` never ends), or more than [`MAX_FILE_BYTES`].
pub(crate) fn read_bounded(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("it is not a regular file"));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(std::io::Error::other(format!("it is larger than {} MiB", MAX_FILE_BYTES >> 20)));
    }
    Ok(bytes)
}

/// Where writing `path` lands: the file at the end of its chain of symbolic links, even a
/// target that does not exist yet (a dotfiles repository not yet populated), so the file is
/// created through the link, as `echo {} > link` would, and the link stays.
fn resolve(path: &Path) -> PathBuf {
    if let Ok(real) = std::fs::canonicalize(path) {
        return real;
    }
    let mut current = path.to_owned();
    for _ in 0..MAX_LINKS {
        match std::fs::read_link(&current) {
            Ok(target) if target.is_absolute() => current = target,
            Ok(target) => current = current.parent().unwrap_or(Path::new(".")).join(target),
            Err(_) => return current,
        }
    }
    current
}

impl SettingsFile {
    /// Loads `path`; a missing file is an empty configuration (created on save).
    pub fn load(path: &Path) -> Result<Self, SettingsError> {
        // Write through symlinks rather than replacing them.
        let path = resolve(path);
        let bytes = match read_bounded(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self { path, root: Map::new(), mode: None, bom: false });
            }
            Err(reason) => return Err(SettingsError::Read { path, reason }),
        };
        let mode = std::fs::metadata(&path).ok().map(|m| m.permissions().mode() & 0o7777);
        let (bom, text) = match bytes.strip_prefix(BOM) {
            Some(rest) => (true, rest),
            None => (false, bytes.as_slice()),
        };
        // An empty file (or only a byte order mark, as Notepad saves an empty document) is an
        // empty configuration, not an error.
        if text.trim_ascii().is_empty() {
            return Ok(Self { path, root: Map::new(), mode, bom });
        }
        let value: Value = serde_json::from_slice(text).map_err(|e| SettingsError::InvalidJson {
            path: path.clone(),
            line: e.line(),
            column: e.column(),
        })?;
        let Value::Object(root) = value else {
            return Err(SettingsError::NotAnObject { path });
        };
        Ok(Self { path, root, mode, bom })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Checks that the file can be written (its directory takes a new file, and the file, if
    /// there is one, can be opened for writing: not read-only, not immutable), before anything
    /// worth saving is asked of the server. Nothing is changed.
    pub fn check_writable(&self) -> Result<(), SettingsError> {
        let unwritable = |reason| SettingsError::Unwritable { path: self.path.clone(), reason };
        let name = self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".probe")
            .tempfile_in(self.dir())
            .map(drop)
            .map_err(unwritable)?;
        match std::fs::OpenOptions::new().write(true).open(&self.path) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(reason) => Err(unwritable(reason)),
        }
    }

    fn dir(&self) -> &Path {
        self.path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
    }

    /// The saved login, if any: the login itself, or the marker of one in the keyring.
    pub fn auth(&self) -> Result<Option<SavedAuth>, SettingsError> {
        let invalid = |_| SettingsError::InvalidAuth { path: self.path.clone() };
        match self.root.get(AUTH_KEY) {
            None | Some(Value::Null) => Ok(None),
            Some(value) if value.get("credential_store").is_some() => {
                let marker: KeyringMarker = serde_json::from_value(value.clone()).map_err(invalid)?;
                if marker.credential_store != KeyringMarker::STORE {
                    return Err(SettingsError::InvalidAuth { path: self.path.clone() });
                }
                Ok(Some(SavedAuth::Keyring(marker)))
            }
            Some(value) => {
                serde_json::from_value(value.clone()).map(|login| Some(SavedAuth::Here(login))).map_err(invalid)
            }
        }
    }

    /// A top-level setting (not the login), such as `"credential_store"`.
    pub fn setting(&self, key: &str) -> Option<&Value> {
        self.root.get(key)
    }

    /// Replaces the stored login with `login` itself, keeping the key's place when it had one.
    pub fn set_login(&mut self, login: &StoredLogin) {
        self.set_auth_value(serde_json::to_value(login).expect("a login serialises to JSON"));
    }

    /// Replaces the stored login with the marker of one kept in the keyring.
    pub fn set_keyring_marker(&mut self, marker: &KeyringMarker) {
        self.set_auth_value(serde_json::to_value(marker).expect("a marker serialises to JSON"));
    }

    fn set_auth_value(&mut self, value: Value) {
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
        let mut locked = self.lock()?;
        change(&mut locked.file);
        let saved = locked.file.save()?;
        Ok((locked.into_file(), saved))
    }

    /// The file as it is on disk now, under an exclusive lock on its directory held until the
    /// [`Locked`] is dropped: for a change that must ask the server first (a refresh), so that
    /// `loom`s started at once take turns, and each sees what the one before it saved.
    /// The wait is bounded ([`crate::lock::PATIENCE`]): a lock held longer names its holder.
    pub fn lock(&self) -> Result<Locked, SettingsError> {
        let lock = crate::lock::lock_dir(self.dir(), crate::lock::PATIENCE).map_err(|error| match error {
            crate::lock::LockError::Io(reason) => SettingsError::Write { path: self.path.clone(), reason },
            held => SettingsError::Locked(held),
        })?;
        let file = Self::load(&self.path)?;
        Ok(Locked { file, _lock: lock })
    }

    /// Writes the file atomically: the old content or the new, never half of either.
    pub fn save(&mut self) -> Result<Saved, SettingsError> {
        let write_error = |reason| SettingsError::Write { path: self.path.clone(), reason };
        // A marker of a login kept in the keyring holds no token.
        let holds_token = self.root.get(AUTH_KEY).is_some_and(|auth| auth.get("credential_store").is_none());
        let mode = match (holds_token, self.mode) {
            (true, _) | (false, None) => 0o600,
            (false, Some(mode)) => mode,
        };
        let mut text = if self.bom { String::from('\u{feff}') } else { String::new() };
        text.push_str(&serde_json::to_string_pretty(&self.root).expect("settings serialise to JSON"));
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
            refresh_token: Some("loomrt_r".into()),
            session_expires_at: Some("2027-01-01T00:00:00Z".into()),
            token_name: None,
        }
    }

    #[test]
    fn a_file_already_private_or_without_a_token_is_not_said_to_be_tightened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DEFAULT_FILE);
        std::fs::write(&path, "{}").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let mut settings = SettingsFile::load(&path).unwrap();
        settings.set_login(&login());
        assert_eq!(settings.save().unwrap(), Saved { tightened_from: None });
        // Without a token the file keeps the mode it had, and nothing is said.
        std::fs::write(&path, r#"{"project_name": "x"}"#).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut settings = SettingsFile::load(&path).unwrap();
        assert_eq!(settings.save().unwrap(), Saved { tightened_from: None });
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o644);
    }

    #[test]
    fn files_up_to_the_bound_are_read_and_one_byte_more_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DEFAULT_FILE);
        std::fs::write(&path, vec![b' '; MAX_FILE_BYTES as usize]).unwrap();
        assert_eq!(read_bounded(&path).unwrap().len() as u64, MAX_FILE_BYTES);
        std::fs::write(&path, vec![b' '; MAX_FILE_BYTES as usize + 1]).unwrap();
        let refused = read_bounded(&path).unwrap_err();
        assert_eq!(refused.to_string(), "it is larger than 16 MiB");
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
        assert_eq!(SettingsFile::load(&path).unwrap().auth().unwrap(), Some(SavedAuth::Here(login())));

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
        assert_eq!(updated.auth().unwrap(), Some(SavedAuth::Here(login())));
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
        assert_eq!(settings.auth().unwrap(), None);
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

    #[test]
    fn a_byte_order_mark_is_read_past_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DEFAULT_FILE);
        std::fs::write(&path, b"\xEF\xBB\xBF{\"project_name\": \"demo\"}").unwrap();
        let mut settings = SettingsFile::load(&path).unwrap();
        settings.set_login(&login());
        settings.save().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert!(bytes.starts_with(BOM), "the mark is kept");
        assert_eq!(SettingsFile::load(&path).unwrap().auth().unwrap(), Some(SavedAuth::Here(login())));
        // Without a mark, none is added.
        std::fs::write(&path, r#"{"project_name": "demo"}"#).unwrap();
        SettingsFile::load(&path).unwrap().save().unwrap();
        assert!(!std::fs::read(&path).unwrap().starts_with(BOM));
    }

    #[test]
    fn a_dangling_symlink_gets_its_target_created() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("dotfiles")).unwrap();
        let link = dir.path().join(DEFAULT_FILE);
        // Relative, through a second link, to a file that does not exist yet.
        std::os::unix::fs::symlink("middle.json", &link).unwrap();
        std::os::unix::fs::symlink("dotfiles/loom.json", dir.path().join("middle.json")).unwrap();
        let mut settings = SettingsFile::load(&link).unwrap();
        settings.set_login(&login());
        settings.save().unwrap();
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link stays a link");
        assert!(std::fs::read_to_string(dir.path().join("dotfiles/loom.json")).unwrap().contains("access_token"));
        assert_eq!(SettingsFile::load(&link).unwrap().auth().unwrap(), Some(SavedAuth::Here(login())));
    }

    #[test]
    fn an_unwritable_place_is_found_before_anything_is_sent_and_said_once() {
        // sysfs takes no new file, even from root (a 0555 directory would not stop root).
        let settings = SettingsFile::load(Path::new("/sys/dev-automation.config.json")).unwrap();
        let error = settings.check_writable().unwrap_err();
        let SettingsError::Unwritable { reason, .. } = &error else { panic!("{error:?}") };
        let reason = reason.to_string();
        let text = format!("{:#}", anyhow::Error::from(error));
        assert_eq!(text.matches(&reason).count(), 1, "{text}");
        let dir = tempfile::tempdir().unwrap();
        assert!(SettingsFile::load(&dir.path().join(DEFAULT_FILE)).unwrap().check_writable().is_ok());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "the probe leaves nothing behind");
    }

    #[test]
    fn an_empty_file_is_an_empty_configuration_and_a_device_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DEFAULT_FILE);
        for empty in [&b""[..], b"\xEF\xBB\xBF", b"  \n"] {
            std::fs::write(&path, empty).unwrap();
            assert_eq!(SettingsFile::load(&path).unwrap().auth().unwrap(), None, "{empty:?}");
        }
        for device in ["/dev/zero", "/dev/full", "/dev/null"] {
            let refused = SettingsFile::load(Path::new(device)).unwrap_err();
            assert!(refused.to_string().contains("not a regular file"), "{device}: {refused}");
        }
    }

    #[test]
    fn a_file_that_cannot_be_written_is_found_before_anything_is_sent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DEFAULT_FILE);
        std::fs::write(&path, "{}").unwrap();
        assert!(SettingsFile::load(&path).unwrap().check_writable().is_ok());
        // A settings path that is a directory cannot be opened for writing either.
        let taken = dir.path().join("taken");
        std::fs::create_dir(&taken).unwrap();
        let settings = SettingsFile { path: taken, root: Map::new(), mode: None, bom: false };
        assert!(matches!(settings.check_writable(), Err(SettingsError::Unwritable { .. })));
    }
}
