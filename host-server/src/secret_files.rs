//! The host's secrets kept in files (the master key that seals the signing keys in the
//! database, the key that authenticates the compiled-code cache, and a pre-0.2 token
//! secret to import): loaded, or generated once and saved.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use secrecy::SecretSlice;

use crate::durable::{self, IfExists};

/// Bytes of a generated secret, and the least a provided one must have (HS256's key size).
pub const SECRET_BYTES: usize = 32;

/// What a secret file holds, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// The pre-0.2 token signing secret (imported once as the legacy key).
    Signing,
    /// The key-encryption key that seals the signing keys kept in the database.
    Master,
    /// The key that authenticates compiled-code cache entries.
    Cache,
}

impl std::fmt::Display for SecretKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Signing => "token signing secret",
            Self::Master => "master key",
            Self::Cache => "compiled-code cache key",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the {kind} {path}")]
    Read { kind: SecretKind, path: PathBuf, source: std::io::Error },
    #[error("the {kind} {path} holds {len} bytes; at least {SECRET_BYTES} are needed")]
    TooShort { kind: SecretKind, path: PathBuf, len: usize },
    #[error(
        "the {kind} {path} holds {len} bytes, and only {SECRET_BYTES} would be used: make it exactly {SECRET_BYTES} \
         random bytes (`head -c {SECRET_BYTES} /dev/urandom`); if it held more before, keys were sealed under its \
         first {SECRET_BYTES} bytes: keep those (`head -c {SECRET_BYTES}`)"
    )]
    TooLong { kind: SecretKind, path: PathBuf, len: usize },
    #[error("cannot save a new {kind} to {path}")]
    Write { kind: SecretKind, path: PathBuf, source: std::io::Error },
    #[error("cannot generate a {kind}: {reason}")]
    Random { kind: SecretKind, reason: getrandom::Error },
}

/// Reads the secret at `path`; when there is no file, generates 32 random bytes
/// and saves them there (mode 0600, written whole or not at all), so it
/// survives a restart (tokens stay valid, cache entries stay usable).
pub fn load_or_create(path: &Path, kind: SecretKind) -> Result<SecretSlice<u8>, KeyError> {
    match std::fs::read(path) {
        Ok(bytes) => {
            warn_if_readable_by_others(path, kind);
            check_length(path, kind, bytes)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(path, kind),
        Err(source) => Err(KeyError::Read { kind, path: path.to_owned(), source }),
    }
}

/// Reads the secret at `path` if there is one; never creates it.
pub fn load_existing(path: &Path, kind: SecretKind) -> Result<Option<SecretSlice<u8>>, KeyError> {
    match std::fs::read(path) {
        Ok(bytes) => check_length(path, kind, bytes).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(KeyError::Read { kind, path: path.to_owned(), source }),
    }
}

/// A secret of the right length: at least [`SECRET_BYTES`]; for the keys used as cipher and
/// MAC keys of exactly that size (the master and cache keys), exactly, since a longer file
/// would be silently cut.
fn check_length(path: &Path, kind: SecretKind, bytes: Vec<u8>) -> Result<SecretSlice<u8>, KeyError> {
    if bytes.len() < SECRET_BYTES {
        return Err(KeyError::TooShort { kind, path: path.to_owned(), len: bytes.len() });
    }
    if bytes.len() > SECRET_BYTES && kind != SecretKind::Signing {
        return Err(KeyError::TooLong { kind, path: path.to_owned(), len: bytes.len() });
    }
    Ok(SecretSlice::from(bytes))
}

fn create(path: &Path, kind: SecretKind) -> Result<SecretSlice<u8>, KeyError> {
    let write_error = |source| KeyError::Write { kind, path: path.to_owned(), source };
    let mut secret = vec![0u8; SECRET_BYTES];
    getrandom::fill(&mut secret).map_err(|reason| KeyError::Random { kind, reason })?;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(write_error)?;
    match durable::write_atomic(path, &[&secret], IfExists::Keep) {
        Ok(()) => {
            tracing::info!(path = %path.display(), "generated a new {kind}");
            Ok(SecretSlice::from(secret))
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let bytes = std::fs::read(path).map_err(|source| KeyError::Read { kind, path: path.to_owned(), source })?;
            check_length(path, kind, bytes)
        }
        Err(e) => Err(write_error(e)),
    }
}

fn warn_if_readable_by_others(path: &Path, kind: SecretKind) {
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            path = %path.display(),
            mode = format!("{:o}", meta.permissions().mode() & 0o777),
            "the {kind} is readable by other users; consider `chmod 600`"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn generates_once_with_mode_0600_and_reloads_the_same_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/jwt-secret");
        let first = load_or_create(&path, SecretKind::Signing).unwrap();
        assert_eq!(first.expose_secret().len(), SECRET_BYTES);
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let second = load_or_create(&path, SecretKind::Signing).unwrap();
        assert_eq!(first.expose_secret(), second.expose_secret());
    }

    #[test]
    fn refuses_a_short_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwt-secret");
        std::fs::write(&path, b"too short").unwrap();
        assert!(matches!(load_or_create(&path, SecretKind::Signing), Err(KeyError::TooShort { len: 9, .. })));
        assert_eq!(std::fs::read(&path).unwrap(), b"too short");
    }

    #[test]
    fn a_master_key_longer_than_it_can_use_is_refused_not_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master-key");
        std::fs::write(&path, [7u8; 48]).unwrap();
        for kind in [SecretKind::Master, SecretKind::Cache] {
            let refused = load_or_create(&path, kind).unwrap_err();
            assert!(matches!(refused, KeyError::TooLong { len: 48, .. }), "{refused}");
            assert!(refused.to_string().contains("head -c 32"), "{refused}");
        }
        // A pre-0.2 token secret is an HS256 key, which uses every byte.
        assert_eq!(load_or_create(&path, SecretKind::Signing).unwrap().expose_secret().len(), 48);
    }
}
