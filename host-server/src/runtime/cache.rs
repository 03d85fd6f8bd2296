//! Compiled-code cache: precompiled components in the data directory, so a
//! restart or a swap back to a known component skips compilation; and the
//! self-test memo, which lets known bytes skip the password checks.
//!
//! A compiled entry is native code, so it is authenticated, not merely
//! checksummed: it starts with an HMAC-SHA256, under a key only this host's user holds
//! (`<data-dir>/cache-key`; with `--cache-dir`, the `cache-key` in that directory, which
//! only this user may write, so hosts of one user share it), of the engine's compatibility
//! hash, the component's digest and the artifact. An entry written without the key
//! (changed, truncated, or copied from another cache) fails the check in constant time and
//! is recompiled, never loaded. Memo markers are named by a
//! MAC too, over everything the memoised checks depend on, so none can be forged.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretSlice};
use sha2::Sha256;
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::durable::{self, IfExists};

type HmacSha256 = Hmac<Sha256>;

/// Bytes of the MAC in front of an entry.
const MAC_BYTES: usize = 32;

/// Where the cache lives and the key that authenticates it.
pub struct CacheSettings {
    pub dir: PathBuf,
    /// At least 32 random bytes that never leave this host.
    pub key: SecretSlice<u8>,
}

/// How the compiled component was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Compiled,
    Cache,
}

pub struct CodeCache {
    dir: PathBuf,
    key: SecretSlice<u8>,
    engine_key: String,
}

impl CodeCache {
    pub fn new(settings: CacheSettings, engine: &Engine) -> Self {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Self { dir: settings.dir, key: settings.key, engine_key: format!("{:016x}", hasher.finish()) }
    }

    fn entry(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}-{}.cwasm", self.engine_key))
    }

    fn mac(&self, parts: &[&[u8]]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(self.key.expose_secret()).expect("HMAC takes keys of any length");
        for part in parts {
            mac.update(&(part.len() as u64).to_le_bytes());
            mac.update(part);
        }
        mac
    }

    fn entry_mac(&self, sha256: &str, artifact: &[u8]) -> HmacSha256 {
        self.mac(&[b"compiled", self.engine_key.as_bytes(), sha256.as_bytes(), artifact])
    }

    /// The compiled form of the component with digest `sha256`, from the cache
    /// when an authentic entry exists, else compiled from `bytes` and stored.
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        sha256: &str,
        bytes: &[u8],
    ) -> wasmtime::Result<(Component, Origin)> {
        let path = self.entry(sha256);
        if let Some(component) = self.read(engine, sha256, &path) {
            return Ok((component, Origin::Cache));
        }
        let component = Component::new(engine, bytes)?;
        if let Err(error) = self.write(sha256, &path, &component) {
            tracing::warn!(path = %path.display(), %error, "could not store the compiled component in the cache");
        }
        Ok((component, Origin::Compiled))
    }

    /// The marker recording that the self-test check `check` passed, in the
    /// conditions `context` names. Its name is a MAC, so no one without the key
    /// can make one.
    fn marker(&self, check: &str, context: &str) -> PathBuf {
        let name = self.mac(&[b"self-test", check.as_bytes(), context.as_bytes()]).finalize().into_bytes();
        self.dir.join(format!("passed-{}", super::hex(&name)))
    }

    /// Whether the self-test check named `check` passed before in `context`.
    pub fn passed(&self, check: &str, context: &str) -> bool {
        self.marker(check, context).exists()
    }

    /// Records that the self-test check named `check` passed in `context`.
    pub fn record_pass(&self, check: &str, context: &str) {
        let marker = self.marker(check, context);
        let written =
            std::fs::create_dir_all(&self.dir).and_then(|()| durable::write_atomic(&marker, &[], IfExists::Replace));
        if let Err(error) = written {
            tracing::warn!(path = %marker.display(), %error, "could not record a passed self-test");
        }
    }

    fn read(&self, engine: &Engine, sha256: &str, path: &Path) -> Option<Component> {
        let bytes = std::fs::read(path).ok()?;
        let authentic = bytes.len() > MAC_BYTES
            && self.entry_mac(sha256, &bytes[MAC_BYTES..]).verify_slice(&bytes[..MAC_BYTES]).is_ok();
        if !authentic {
            tracing::warn!(
                path = %path.display(),
                "ignoring a compiled-component cache entry this host did not write (changed, truncated or copied \
                 in); compiling instead"
            );
            return None;
        }
        // SAFETY: the artifact is one this host serialised itself: its MAC, under a
        // key only this host holds, matches. wasmtime also checks that it was made
        // by a compatible engine and refuses it otherwise.
        match unsafe { Component::deserialize(engine, &bytes[MAC_BYTES..]) } {
            Ok(component) => Some(component),
            Err(error) => {
                tracing::warn!(path = %path.display(), error = %format!("{error:#}"), "ignoring an unusable compiled-component cache entry");
                None
            }
        }
    }

    fn write(&self, sha256: &str, path: &Path, component: &Component) -> anyhow::Result<()> {
        let artifact = component.serialize().map_err(|e| anyhow::anyhow!("{e:#}"))?;
        let mac = self.entry_mac(sha256, &artifact).finalize().into_bytes();
        std::fs::create_dir_all(&self.dir)?;
        durable::write_atomic(path, &[&mac, &artifact], IfExists::Replace)?;
        Ok(())
    }
}
