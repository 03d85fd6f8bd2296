//! The token signing secret: loaded from its file, or generated once and saved.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use secrecy::SecretSlice;

use crate::durable::{self, IfExists};

/// Bytes of a generated secret, and the least a provided one must have (HS256's key size).
pub const SECRET_BYTES: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the signing secret {path}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("the signing secret {path} holds {len} bytes; at least {SECRET_BYTES} are needed")]
    TooShort { path: PathBuf, len: usize },
    #[error("cannot save a new signing secret to {path}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("cannot generate a signing secret: {0}")]
    Random(getrandom::Error),
}

/// Reads the secret at `path`; when there is no file, generates 32 random bytes
/// and saves them there (mode 0600, written whole or not at all), so tokens
/// survive a restart.
pub fn load_or_create(path: &Path) -> Result<SecretSlice<u8>, KeyError> {
    match std::fs::read(path) {
        Ok(bytes) => {
            warn_if_readable_by_others(path);
            check_length(path, bytes)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(path),
        Err(source) => Err(KeyError::Read { path: path.to_owned(), source }),
    }
}

fn check_length(path: &Path, bytes: Vec<u8>) -> Result<SecretSlice<u8>, KeyError> {
    if bytes.len() < SECRET_BYTES {
        return Err(KeyError::TooShort { path: path.to_owned(), len: bytes.len() });
    }
    Ok(SecretSlice::from(bytes))
}

fn create(path: &Path) -> Result<SecretSlice<u8>, KeyError> {
    let write_error = |source| KeyError::Write { path: path.to_owned(), source };
    let mut secret = vec![0u8; SECRET_BYTES];
    getrandom::fill(&mut secret).map_err(KeyError::Random)?;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(write_error)?;
    match durable::write_atomic(path, &[&secret], IfExists::Keep) {
        Ok(()) => {
            tracing::info!(path = %path.display(), "generated a new token signing secret");
            Ok(SecretSlice::from(secret))
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let bytes = std::fs::read(path).map_err(|source| KeyError::Read { path: path.to_owned(), source })?;
            check_length(path, bytes)
        }
        Err(e) => Err(write_error(e)),
    }
}

fn warn_if_readable_by_others(path: &Path) {
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            path = %path.display(),
            mode = format!("{:o}", meta.permissions().mode() & 0o777),
            "the signing secret is readable by other users; consider `chmod 600`"
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
        let first = load_or_create(&path).unwrap();
        assert_eq!(first.expose_secret().len(), SECRET_BYTES);
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let second = load_or_create(&path).unwrap();
        assert_eq!(first.expose_secret(), second.expose_secret());
    }

    #[test]
    fn refuses_a_short_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwt-secret");
        std::fs::write(&path, b"too short").unwrap();
        assert!(matches!(load_or_create(&path), Err(KeyError::TooShort { len: 9, .. })));
        assert_eq!(std::fs::read(&path).unwrap(), b"too short");
    }
}
