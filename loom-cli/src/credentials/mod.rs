//! Where a login's tokens are kept: in the settings file (the default, as always), or in the
//! system keyring with only a marker naming the server and account in the file.
//!
//! Every read, renewal and removal of a login goes through here, so the commands never ask
//! which store holds it. A keyring that is asked for and fails is an error, never a quiet
//! fallback to plain text.

pub mod keyring;

use std::path::Path;

use crate::settings::{KeyringMarker, Saved, SavedAuth, SettingsError, SettingsFile, StoredLogin};
use keyring::{KeyringEntry, KeyringError};

/// The environment variable that chooses the store for a new login.
pub const STORE_ENV: &str = "LOOM_CREDENTIAL_STORE";
/// The settings file's top-level key that chooses it.
pub const STORE_SETTING: &str = "credential_store";

/// Where a login's tokens are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CredentialStore {
    /// In the settings file, readable by its owner only.
    #[default]
    File,
    /// In the system keyring; the settings file names the server and account only.
    Keyring,
}

impl CredentialStore {
    pub fn name(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Keyring => "keyring",
        }
    }

    /// Where it is, for a sentence: "the system keyring", "dev-automation.config.json".
    pub fn place(self, settings: &Path) -> String {
        match self {
            Self::File => settings.display().to_string(),
            Self::Keyring => "the system keyring".into(),
        }
    }
}

impl std::str::FromStr for CredentialStore {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "file" => Ok(Self::File),
            "keyring" => Ok(Self::Keyring),
            other => Err(format!("'{other}' is not a credential store: use 'keyring' or 'file'")),
        }
    }
}

/// Why a login could not be read, kept or removed.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error("{reason}, so loom cannot {doing}; {advice}")]
    Keyring { reason: KeyringError, doing: &'static str, advice: &'static str },
    #[error(
        "the system keyring's entry for {email} at {server} is not a login loom understands; run 'loom logout', \
         then 'loom login'"
    )]
    Garbled { server: String, email: String },
    #[error("{STORE_ENV} says '{0}': use 'keyring' or 'file'")]
    BadEnv(String),
    #[error("the \"{STORE_SETTING}\" setting in {path} says '{value}': use \"keyring\" or \"file\"")]
    BadSetting { path: std::path::PathBuf, value: String },
}

/// What to tell the user when the keyring fails while keeping a login: nothing was put in
/// plain text, and how to choose that.
const KEEP_ADVICE: &str = "nothing was written in plain text: unlock or start the keyring (a desktop session, or \
                           gnome-keyring-daemon on this D-Bus session), or keep the login in the settings file with \
                           --credential-store file";
const READ_ADVICE: &str =
    "unlock or start the keyring (a desktop session, or gnome-keyring-daemon on this D-Bus session) and run loom again";

fn keyring_error(doing: &'static str, advice: &'static str) -> impl FnOnce(KeyringError) -> CredentialError {
    move |reason| CredentialError::Keyring { reason, doing, advice }
}

/// A login and where it is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    pub login: StoredLogin,
    pub store: CredentialStore,
}

/// The login `settings` names, read from where it is kept; `None` when there is none, or the
/// keyring no longer holds the one the marker names.
pub fn read(settings: &SettingsFile) -> Result<Option<Kept>, CredentialError> {
    match settings.auth()? {
        None => Ok(None),
        Some(SavedAuth::Here(login)) => Ok(Some(Kept { login, store: CredentialStore::File })),
        Some(SavedAuth::Keyring(marker)) => {
            let entry = entry_of(&marker);
            let Some(secret) = entry.read().map_err(keyring_error("read the saved login", READ_ADVICE))? else {
                return Ok(None);
            };
            let garbled = || CredentialError::Garbled { server: marker.server.clone(), email: marker.email.clone() };
            let login: StoredLogin = serde_json::from_str(&secret).map_err(|_| garbled())?;
            if login.server != marker.server || login.email != marker.email {
                return Err(garbled());
            }
            Ok(Some(Kept { login, store: CredentialStore::Keyring }))
        }
    }
}

/// Where the login `settings` names is kept, read without asking the keyring.
pub fn kept_in(settings: &SettingsFile) -> Option<CredentialStore> {
    match settings.auth() {
        Ok(Some(SavedAuth::Keyring(_))) => Some(CredentialStore::Keyring),
        Ok(Some(SavedAuth::Here(_))) => Some(CredentialStore::File),
        _ => None,
    }
}

/// The marker of a login kept in the keyring, if that is what `settings` holds (read without
/// asking the keyring).
pub fn marker(settings: &SettingsFile) -> Option<KeyringMarker> {
    match settings.auth() {
        Ok(Some(SavedAuth::Keyring(marker))) => Some(marker),
        _ => None,
    }
}

/// The store asked for by the user: `flag` (`--credential-store`), else
/// `LOOM_CREDENTIAL_STORE` when it is set to something.
pub fn asked_for(flag: Option<CredentialStore>) -> Result<Option<CredentialStore>, CredentialError> {
    if flag.is_some() {
        return Ok(flag);
    }
    match std::env::var(STORE_ENV) {
        Ok(text) if !text.trim().is_empty() => {
            text.parse().map(Some).map_err(|_: String| CredentialError::BadEnv(text.trim().to_owned()))
        }
        _ => Ok(None),
    }
}

/// The store a new login goes to: `asked` ([`asked_for`]), else the settings file's
/// `"credential_store"`, else where the current login is, else the file.
pub fn choose(
    asked: Option<CredentialStore>,
    settings: &SettingsFile,
    current: Option<CredentialStore>,
) -> Result<CredentialStore, CredentialError> {
    if let Some(store) = asked {
        return Ok(store);
    }
    match settings.setting(STORE_SETTING) {
        None | Some(serde_json::Value::Null) => Ok(current.unwrap_or_default()),
        Some(value) => value.as_str().and_then(|text| text.parse().ok()).ok_or_else(|| CredentialError::BadSetting {
            path: settings.path().to_owned(),
            value: value.as_str().map(str::to_owned).unwrap_or_else(|| value.to_string()),
        }),
    }
}

fn entry_of(marker: &KeyringMarker) -> KeyringEntry {
    KeyringEntry::new(&marker.server, &marker.email, &marker.entry)
}

/// Checks that the keyring takes a login before one is made for it to keep, so that a missing,
/// locked or hanging keyring is found before a password is sent.
pub fn check_keyring() -> Result<(), CredentialError> {
    KeyringEntry::new("probe", "probe", "probe").check_writable().map_err(keyring_error("keep the login", KEEP_ADVICE))
}

/// What keeping a login did besides saving it.
#[derive(Debug)]
pub struct Keeping {
    pub saved: Saved,
    /// The keyring entry of the login this one replaced, when it could not be removed: its
    /// name, and why.
    pub left_behind: Option<(String, KeyringError)>,
}

/// Keeps `login` in `store` under the settings file's lock: in a fresh keyring entry first
/// (the marker then replacing whatever the file held, a plain copy included), or in the file.
/// The keyring entry of the login replaced is removed after. Nothing changes when the keyring
/// or the file fails (an entry written for a file that then cannot be saved is removed).
pub fn keep(
    settings: &SettingsFile,
    login: &StoredLogin,
    store: CredentialStore,
) -> Result<(SettingsFile, Keeping), CredentialError> {
    let mut locked = settings.lock()?;
    let before = marker(&locked.file);
    let mut written = None;
    match store {
        CredentialStore::Keyring => {
            let id = keyring::new_entry_id()
                .map_err(|reason| SettingsError::Read { path: "/dev/urandom".into(), reason })?;
            let marker = KeyringMarker::new(&login.server, &login.email, &id);
            let entry = entry_of(&marker);
            entry.write(secret(login)).map_err(keyring_error("keep the login", KEEP_ADVICE))?;
            locked.file.set_keyring_marker(&marker);
            written = Some(entry);
        }
        CredentialStore::File => locked.file.set_login(login),
    }
    let saved = match locked.file.save() {
        Ok(saved) => saved,
        Err(error) => {
            if let Some(entry) = written {
                let _ = entry.delete();
            }
            return Err(error.into());
        }
    };
    let left_behind = before.and_then(|old| {
        let entry = entry_of(&old);
        entry.delete().err().map(|reason| (format!("service {} username {}", entry.service(), entry.user()), reason))
    });
    Ok((locked.into_file(), Keeping { saved, left_behind }))
}

/// For a login kept in the keyring, a second lock beside the settings file's: copies of one
/// settings file (a copied project) name one keyring entry, and each copy's lock is its own, so
/// their renewals take turns under one lock in the user's loom directory (`~/.config/loom`). Held until dropped; `None` for a file login, or when that directory is
/// the settings file's own (whose lock is already held).
pub fn lock_shared_login(settings: &SettingsFile) -> Result<Option<std::fs::File>, CredentialError> {
    if kept_in(settings) != Some(CredentialStore::Keyring) {
        return Ok(None);
    }
    let Some(dir) = crate::known::user_config_dir() else { return Ok(None) };
    let write_error = |reason| SettingsError::Write { path: dir.clone(), reason };
    std::fs::create_dir_all(&dir).map_err(write_error)?;
    let settings_dir = settings.path().parent().and_then(|d| d.canonicalize().ok());
    if settings_dir.is_some_and(|own| dir.canonicalize().is_ok_and(|shared| shared == own)) {
        return Ok(None);
    }
    crate::lock::lock_dir(&dir, crate::lock::PATIENCE).map(Some).map_err(|error| match error {
        crate::lock::LockError::Io(reason) => SettingsError::Write { path: dir.clone(), reason }.into(),
        held => SettingsError::Locked(held).into(),
    })
}

/// Keeps a renewed login where the login was, in a file already locked by the caller; the
/// settings file itself is written only when it holds the login.
pub fn renew(file: &mut SettingsFile, login: &StoredLogin, store: CredentialStore) -> Result<(), CredentialError> {
    match (store, marker(file)) {
        (CredentialStore::Keyring, Some(marker)) => {
            entry_of(&marker).write(secret(login)).map_err(keyring_error("keep the renewed login", READ_ADVICE))
        }
        (CredentialStore::Keyring, None) => {
            Err(CredentialError::Settings(SettingsError::InvalidAuth { path: file.path().to_owned() }))
        }
        (CredentialStore::File, _) => {
            file.set_login(login);
            file.save().map(drop).map_err(CredentialError::from)
        }
    }
}

/// Removes the login from the file (already locked by the caller) and, when it is kept there,
/// from the keyring; whether there was one. The keyring entry goes first: a keyring that
/// cannot be reached leaves the marker, so a later `loom logout` can finish.
pub fn forget(file: &mut SettingsFile) -> Result<bool, CredentialError> {
    if let Some(marker) = marker(file) {
        entry_of(&marker).delete().map_err(keyring_error("remove the saved login", READ_ADVICE))?;
    }
    let had = file.clear_login();
    file.save()?;
    Ok(had)
}

fn secret(login: &StoredLogin) -> String {
    serde_json::to_string(login).expect("a login serialises to JSON")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_are_named_in_either_case_and_anything_else_is_refused() {
        assert_eq!("keyring".parse(), Ok(CredentialStore::Keyring));
        assert_eq!(" FILE ".parse(), Ok(CredentialStore::File));
        assert!("plaintext".parse::<CredentialStore>().unwrap_err().contains("'plaintext' is not a credential store"));
    }

    #[test]
    fn the_setting_decides_when_nothing_else_does() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        std::fs::write(&path, r#"{"credential_store": "keyring"}"#).unwrap();
        let settings = SettingsFile::load(&path).unwrap();
        assert_eq!(choose(None, &settings, None).unwrap(), CredentialStore::Keyring);
        assert_eq!(choose(Some(CredentialStore::File), &settings, None).unwrap(), CredentialStore::File);
        std::fs::write(&path, r#"{"credential_store": 3}"#).unwrap();
        let settings = SettingsFile::load(&path).unwrap();
        let refused = choose(None, &settings, None).unwrap_err().to_string();
        assert!(refused.ends_with("says '3': use \"keyring\" or \"file\""), "{refused}");
        std::fs::write(&path, "{}").unwrap();
        let settings = SettingsFile::load(&path).unwrap();
        assert_eq!(choose(None, &settings, Some(CredentialStore::Keyring)).unwrap(), CredentialStore::Keyring);
        assert_eq!(choose(None, &settings, None).unwrap(), CredentialStore::File);
    }

    #[test]
    fn a_marker_holds_no_token_and_a_mixed_entry_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        let mut settings = SettingsFile::load(&path).unwrap();
        settings.set_keyring_marker(&KeyringMarker::new("http://127.0.0.1:8000", "ada@example.com", "0123456789ab"));
        settings.save().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(r#""credential_store": "keyring""#) && !text.contains("token"), "{text}");
        assert!(matches!(SettingsFile::load(&path).unwrap().auth().unwrap(), Some(SavedAuth::Keyring(_))));
        std::fs::write(
            &path,
            r#"{"auth": {"server": "s", "email": "e", "credential_store": "keyring", "entry": "1", "access_token": "x"}}"#,
        )
        .unwrap();
        assert!(matches!(SettingsFile::load(&path).unwrap().auth(), Err(SettingsError::InvalidAuth { .. })));
        std::fs::write(&path, r#"{"auth": {"server": "s", "email": "e", "credential_store": "vault", "entry": "1"}}"#)
            .unwrap();
        assert!(matches!(SettingsFile::load(&path).unwrap().auth(), Err(SettingsError::InvalidAuth { .. })));
    }
}
