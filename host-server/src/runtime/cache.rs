//! Compiled-code cache: precompiled components in the data directory, so a
//! restart or a swap back to a known component skips compilation.
//!
//! An entry is named by the component's SHA-256 and the engine's compatibility
//! hash, and starts with the SHA-256 of the artifact after it. An entry whose
//! checksum does not match (truncated, corrupted) is ignored and rebuilt, and
//! wasmtime itself refuses artifacts made by an incompatible engine. The cache
//! directory is as trusted as the component path itself: whoever can write
//! either can change what the host runs.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::durable::{self, IfExists};

/// How the compiled component was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Compiled,
    Cache,
}

pub struct CodeCache {
    dir: PathBuf,
    engine_key: String,
}

impl CodeCache {
    pub fn new(dir: PathBuf, engine: &Engine) -> Self {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Self { dir, engine_key: format!("{:016x}", hasher.finish()) }
    }

    fn entry(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}-{}.cwasm", self.engine_key))
    }

    /// The compiled form of the component with digest `sha256`, from the cache
    /// when a sound entry exists, else compiled from `bytes` and stored.
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        sha256: &str,
        bytes: &[u8],
    ) -> wasmtime::Result<(Component, Origin)> {
        let path = self.entry(sha256);
        if let Some(component) = self.read(engine, &path) {
            return Ok((component, Origin::Cache));
        }
        let component = Component::new(engine, bytes)?;
        if let Err(error) = self.write(&path, &component) {
            tracing::warn!(path = %path.display(), %error, "could not store the compiled component in the cache");
        }
        Ok((component, Origin::Compiled))
    }

    fn marker(&self, check: &str) -> PathBuf {
        self.dir.join(format!("passed-{check}"))
    }

    /// Whether the self-test check named `check` passed before.
    pub fn passed(&self, check: &str) -> bool {
        self.marker(check).exists()
    }

    /// Records that the self-test check named `check` passed.
    pub fn record_pass(&self, check: &str) {
        let marker = self.marker(check);
        let written =
            std::fs::create_dir_all(&self.dir).and_then(|()| durable::write_atomic(&marker, &[], IfExists::Replace));
        if let Err(error) = written {
            tracing::warn!(path = %marker.display(), %error, "could not record a passed self-test");
        }
    }

    fn read(&self, engine: &Engine, path: &Path) -> Option<Component> {
        let bytes = std::fs::read(path).ok()?;
        let sound = bytes.len() > 32 && Sha256::digest(&bytes[32..])[..] == bytes[..32];
        if !sound {
            tracing::warn!(path = %path.display(), "ignoring a corrupt compiled-component cache entry");
            return None;
        }
        // SAFETY: the artifact is one this host wrote (its checksum matches) into a
        // directory as trusted as the component path; wasmtime checks that it was
        // made by a compatible engine and refuses it otherwise.
        match unsafe { Component::deserialize(engine, &bytes[32..]) } {
            Ok(component) => Some(component),
            Err(error) => {
                tracing::warn!(path = %path.display(), error = %format!("{error:#}"), "ignoring an unusable compiled-component cache entry");
                None
            }
        }
    }

    fn write(&self, path: &Path, component: &Component) -> anyhow::Result<()> {
        let artifact = component.serialize().map_err(|e| anyhow::anyhow!("{e:#}"))?;
        std::fs::create_dir_all(&self.dir)?;
        durable::write_atomic(path, &[&Sha256::digest(&artifact), &artifact], IfExists::Replace)?;
        Ok(())
    }
}
