//! The system keyring (the Secret Service on Linux, the Keychain on macOS), through
//! `keyring-core`, each call bounded by [`PATIENCE`].
//!
//! A keyring can wait forever: for a desktop prompt to unlock a collection when there is no
//! desktop, or because its daemon is stopped. So every call runs on a thread of its own and
//! loom waits for it at most [`PATIENCE`]; a call still waiting then is left behind (the
//! process ends soon after) and the caller gets [`KeyringError::TimedOut`].

use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::Duration;

use keyring_core::{Entry, Error};

/// How long loom waits for the keyring to answer one call.
pub const PATIENCE: Duration = Duration::from_secs(5);

/// What went wrong with the keyring, for the sentence the user reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyringError {
    /// No keyring to talk to (no D-Bus session, no Secret Service on it, a locked collection
    /// that only a desktop prompt could open).
    #[error("the system keyring is not available ({0})")]
    Unavailable(String),
    /// The keyring answered, and refused: its collection is locked and only a desktop prompt
    /// (none here) could open it, or it refused loom access.
    #[error("the system keyring is locked, and no desktop prompt could unlock it ({0})")]
    Locked(String),
    /// More than one entry answers to this login's name (another program made one like it).
    #[error(
        "the system keyring holds {count} entries named {user} for {service}, and loom cannot tell which is its \
         own; remove the others (secret-tool clear service {service} username {user}, or a keyring manager)"
    )]
    Ambiguous { count: usize, service: String, user: String },
    /// The keyring did not answer within [`PATIENCE`].
    #[error(
        "the system keyring did not answer within {} seconds (it may be locked, waiting for a desktop prompt \
         that is not there)",
        PATIENCE.as_secs()
    )]
    TimedOut,
}

/// One entry of the keyring: loom's login for one account on one server.
#[derive(Debug, Clone)]
pub struct KeyringEntry {
    service: String,
    user: String,
}

impl KeyringEntry {
    /// The entry of one login of `email` at `server`: service `loom:<server>`, user
    /// `<email>#<id>`, where `id` (in the settings file's marker) tells apart the logins of
    /// different projects, as their files would. `secret-tool search service loom:<server>`
    /// lists them.
    pub fn new(server: &str, email: &str, id: &str) -> Self {
        Self { service: format!("loom:{server}"), user: format!("{email}#{id}") }
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    /// The secret, or `None` when there is no such entry.
    pub fn read(&self) -> Result<Option<String>, KeyringError> {
        let (service, user) = (self.service.clone(), self.user.clone());
        match call(move || entry(&service, &user)?.get_password()) {
            Ok(secret) => Ok(Some(secret)),
            Err(Fault::Keyring(Error::NoEntry)) => Ok(None),
            Err(fault) => Err(self.explain(fault)),
        }
    }

    /// Keeps `secret`, replacing what the entry held.
    pub fn write(&self, secret: String) -> Result<(), KeyringError> {
        let (service, user) = (self.service.clone(), self.user.clone());
        call(move || entry(&service, &user)?.set_password(&secret)).map_err(|fault| self.explain(fault))
    }

    /// The error a failed call is, named for this entry.
    fn explain(&self, fault: Fault) -> KeyringError {
        match fault {
            Fault::Keyring(Error::Ambiguous(entries)) => {
                KeyringError::Ambiguous { count: entries.len(), service: self.service.clone(), user: self.user.clone() }
            }
            other => other.into(),
        }
    }

    /// Whether the keyring takes a secret now: a throwaway entry beside this one, written and
    /// removed (a locked collection refuses the write, where a read of nothing would pass).
    pub fn check_writable(&self) -> Result<(), KeyringError> {
        let probe = Self { service: "loom:probe".into(), user: format!("{} at {}", self.user, self.service) };
        probe.write("probe".into())?;
        probe.delete().map(drop)
    }

    /// Removes the entry; whether there was one.
    pub fn delete(&self) -> Result<bool, KeyringError> {
        let (service, user) = (self.service.clone(), self.user.clone());
        match call(move || entry(&service, &user)?.delete_credential()) {
            Ok(()) => Ok(true),
            Err(Fault::Keyring(Error::NoEntry)) => Ok(false),
            Err(fault) => Err(self.explain(fault)),
        }
    }
}

/// The Secret Service shows a label in keyring managers; other stores take no such modifier.
#[cfg(target_os = "linux")]
fn entry(service: &str, user: &str) -> keyring_core::Result<Entry> {
    let account = user.rsplit_once('#').map_or(user, |(email, _)| email);
    let label = format!("Loom login for {account} at {}", service.trim_start_matches("loom:"));
    let modifiers = std::collections::HashMap::from([("label", label.as_str())]);
    Entry::new_with_modifiers(service, user, &modifiers)
}

#[cfg(not(target_os = "linux"))]
fn entry(service: &str, user: &str) -> keyring_core::Result<Entry> {
    Entry::new(service, user)
}

/// A fresh id for a login's entry: 12 hex digits from the system's randomness.
pub fn new_entry_id() -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 6];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Why a call failed: the keyring's own answer, or no answer in time.
enum Fault {
    Keyring(Error),
    TimedOut,
}

impl From<Fault> for KeyringError {
    fn from(fault: Fault) -> Self {
        match fault {
            Fault::TimedOut => Self::TimedOut,
            Fault::Keyring(error @ Error::NoStorageAccess(_)) => Self::Locked(describe(&error)),
            Fault::Keyring(error) => Self::Unavailable(describe(&error)),
        }
    }
}

/// The keyring's error in one line (platform errors can span several).
fn describe(error: &Error) -> String {
    let text = match error {
        Error::NoStorageAccess(inner) | Error::PlatformFailure(inner) => inner.to_string(),
        other => other.to_string(),
    };
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let line = line.trim_end_matches('.');
    if line.chars().count() > 200 { format!("{}…", line.chars().take(200).collect::<String>()) } else { line.into() }
}

/// Runs `op` against the default store on a thread of its own, waiting at most [`PATIENCE`].
fn call<T: Send + 'static>(op: impl FnOnce() -> keyring_core::Result<T> + Send + 'static) -> Result<T, Fault> {
    let (sender, answer) = mpsc::sync_channel(1);
    let spawned = std::thread::Builder::new().name("keyring".into()).spawn(move || {
        let result = open_store().and_then(|()| op());
        let _ = sender.send(result);
    });
    if let Err(error) = spawned {
        return Err(Fault::Keyring(Error::PlatformFailure(Box::new(error))));
    }
    match answer.recv_timeout(PATIENCE) {
        Ok(result) => result.map_err(Fault::Keyring),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(Fault::TimedOut),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            Err(Fault::Keyring(Error::PlatformFailure("the keyring's client stopped".into())))
        }
    }
}

/// Connects to the platform's store once per process and makes it keyring-core's default.
fn open_store() -> keyring_core::Result<()> {
    static OPENED: OnceLock<Result<(), String>> = OnceLock::new();
    OPENED
        .get_or_init(|| {
            let store = platform_store().map_err(|error| describe(&error))?;
            keyring_core::set_default_store(store);
            Ok(())
        })
        .clone()
        .map_err(|reason| Error::PlatformFailure(reason.into()))
}

#[cfg(target_os = "linux")]
fn platform_store() -> keyring_core::Result<std::sync::Arc<keyring_core::CredentialStore>> {
    Ok(zbus_secret_service_keyring_store::Store::new()?)
}

#[cfg(target_os = "macos")]
fn platform_store() -> keyring_core::Result<std::sync::Arc<keyring_core::CredentialStore>> {
    Ok(apple_native_keyring_store::keychain::Store::new()?)
}

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
fn platform_store() -> keyring_core::Result<std::sync::Arc<keyring_core::CredentialStore>> {
    Err(Error::NotSupportedByStore("loom has no keyring support on this system".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_read_as_one_bounded_line() {
        let long = Error::PlatformFailure(format!("first line.\n  second\tline {}", "x".repeat(400)).into());
        let line = describe(&long);
        assert!(line.starts_with("first line. second line xxx"), "{line}");
        assert!(!line.contains('\n') && line.chars().count() == 201, "{line}");
        assert_eq!(describe(&Error::NoStorageAccess("locked.".into())), "locked");
    }

    #[test]
    fn entries_are_keyed_by_server_and_account() {
        let entry = KeyringEntry::new("https://loom.example.com", "ada@example.com", "0a1b2c3d4e5f");
        assert_eq!(
            (entry.service.as_str(), entry.user.as_str()),
            ("loom:https://loom.example.com", "ada@example.com#0a1b2c3d4e5f")
        );
        let id = new_entry_id().unwrap();
        assert!(id.len() == 12 && id.bytes().all(|b| b.is_ascii_hexdigit()) && id != new_entry_id().unwrap());
    }
}
