//! The first gate step: a component runs only if a detached minisign signature
//! beside it (`<file>.minisig`) was made by a key the operator trusts
//! (`--trusted-signers FILE`), unless the operator opted out (`--allow-unsigned`).
//!
//! Whoever can write the component's directory could otherwise run code that
//! holds the signing key; with signatures they also need a trusted secret key.

use std::path::{Path, PathBuf};

use minisign_verify::{Error as MinisignError, PublicKey, Signature};

/// Which components may run.
pub enum Trust {
    /// Only components signed by one of these keys.
    Signers(Vec<PublicKey>),
    /// Any component (development only; the host says so loudly at start).
    AllowUnsigned,
}

/// Why the trusted-signers file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("cannot read the trusted signers file {path}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}, line {line}: not a minisign public key")]
    BadKey { path: PathBuf, line: usize },
    #[error("{path} lists no public key")]
    Empty { path: PathBuf },
}

impl Trust {
    /// Reads minisign public keys, one per line. Blank lines, `#` comments and
    /// minisign's `untrusted comment:` lines are skipped, so a `.pub` file made by
    /// `loom-sign keygen` or `minisign -G` is a valid trusted-signers file, and so
    /// are several of them concatenated.
    pub fn from_file(path: &Path) -> Result<Self, TrustError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| TrustError::Read { path: path.to_owned(), source })?;
        let mut keys = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with("untrusted comment:") {
                continue;
            }
            let key = PublicKey::from_base64(line)
                .map_err(|_| TrustError::BadKey { path: path.to_owned(), line: index + 1 })?;
            keys.push(key);
        }
        if keys.is_empty() {
            return Err(TrustError::Empty { path: path.to_owned() });
        }
        Ok(Self::Signers(keys))
    }

    /// Checks the signature of the component at `path` whose content is `bytes`;
    /// the reason when it is refused.
    pub fn check(&self, path: &Path, bytes: &[u8]) -> Result<(), String> {
        let Self::Signers(keys) = self else {
            return Ok(());
        };
        let signature_path = signature_path(path);
        let text = match std::fs::read_to_string(&signature_path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(format!(
                    "it is not signed: there is no {} (sign it with `just sign`)",
                    signature_path.display()
                ));
            }
            Err(e) => return Err(format!("cannot read {}: {e}", signature_path.display())),
        };
        let signature = Signature::decode(&text)
            .map_err(|_| format!("{} is not a minisign signature", signature_path.display()))?;
        let mut signed_by_trusted_key = false;
        for key in keys {
            // Prehashed (current minisign) signatures only: no legacy mode.
            match key.verify(bytes, &signature, false) {
                Ok(()) => return Ok(()),
                Err(MinisignError::UnexpectedKeyId) => {}
                Err(_) => signed_by_trusted_key = true,
            }
        }
        Err(if signed_by_trusted_key {
            "its signature does not match its bytes (signed something else, or changed since)".into()
        } else {
            "it is signed by a key that is not in the trusted signers".into()
        })
    }
}

/// `<file>.minisig` beside the component.
pub fn signature_path(component: &Path) -> PathBuf {
    let mut name = component.file_name().unwrap_or_default().to_owned();
    name.push(".minisig");
    component.with_file_name(name)
}
