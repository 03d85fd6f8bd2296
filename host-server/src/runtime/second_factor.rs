//! The component's second factors (`loom:auth/second-factor`, since 0.2.1): making a TOTP secret
//! and recovery codes, checking a code, matching a recovery code.
//!
//! The export has a world of its own here, so a component of 0.2.0 (which lacks it) still
//! links as an `authenticator` and serves; [`Loaded::second_factor`] is then `None`, and these
//! calls answer [`RuntimeError::NoSecondFactor`].

use std::sync::Arc;

use wasmtime::component::InstancePre;

use super::calls::Core;
use super::sandbox::GuestState;
use super::{Loaded, Runtime, RuntimeError};

mod bindings {
    wasmtime::component::bindgen!({
        inline: "package loom:host; world second-factor-only { export loom:auth/second-factor@0.2.1; }",
        path: "../wit",
        world: "loom:host/second-factor-only",
        exports: { default: async },
    });
}

pub use bindings::SecondFactorOnlyPre;
pub use bindings::exports::loom::auth::second_factor::{Enrolment, OtpError};

/// The second-factor half of `pre`, when the component exports it.
pub(super) fn link(pre: &InstancePre<GuestState>) -> Option<SecondFactorOnlyPre<GuestState>> {
    SecondFactorOnlyPre::new(pre.clone()).ok()
}

/// Ten recovery codes and their hashes, in the same order.
pub struct RecoveryCodes {
    pub codes: Vec<String>,
    pub hashes: Vec<String>,
}

impl Core {
    async fn second_factor_call<R: Send + 'static>(
        &self,
        loaded: &Loaded,
        export: &'static str,
        deadline: std::time::Duration,
        f: impl for<'a> FnOnce(
            &'a mut wasmtime::Store<GuestState>,
            bindings::SecondFactorOnly,
        ) -> super::calls::GuestFuture<'a, R>,
    ) -> Result<R, RuntimeError> {
        let pre = loaded
            .second_factor
            .as_ref()
            .ok_or_else(|| RuntimeError::NoSecondFactor { wit_version: loaded.info.wit_version.clone() })?;
        self.sandboxed(&loaded.info.sha256, deadline, export, async |store| {
            let world = pre.instantiate_async(&mut *store).await?;
            f(store, world).await
        })
        .await
    }

    pub(super) async fn enrol_with(
        &self,
        loaded: &Loaded,
        issuer: &str,
        account: &str,
    ) -> Result<Enrolment, RuntimeError> {
        let (issuer, account) = (issuer.to_owned(), account.to_owned());
        let deadline = self.limits.hash_deadline;
        self.second_factor_call(loaded, "second-factor.enrol", deadline, |store, world| {
            Box::pin(async move { world.loom_auth_second_factor().call_enrol(store, &issuer, &account).await })
        })
        .await?
        .map_err(RuntimeError::Otp)
    }

    pub(super) async fn check_code_with(
        &self,
        loaded: &Loaded,
        secret: &[u8],
        code: &str,
        unix_seconds: u64,
        last_used_step: Option<u64>,
    ) -> Result<Option<u64>, RuntimeError> {
        let (secret, code) = (zeroize::Zeroizing::new(secret.to_vec()), code.to_owned());
        let deadline = self.limits.token_deadline;
        self.second_factor_call(loaded, "second-factor.check-code", deadline, |store, world| {
            Box::pin(async move {
                world
                    .loom_auth_second_factor()
                    .call_check_code(store, &secret, &code, unix_seconds, last_used_step)
                    .await
            })
        })
        .await?
        .map_err(RuntimeError::Otp)
    }

    pub(super) async fn new_recovery_codes_with(&self, loaded: &Loaded) -> Result<RecoveryCodes, RuntimeError> {
        let deadline = self.limits.hash_deadline;
        self.second_factor_call(loaded, "second-factor.new-recovery-codes", deadline, |store, world| {
            Box::pin(async move { world.loom_auth_second_factor().call_new_recovery_codes(store).await })
        })
        .await?
        .map(|(codes, hashes)| RecoveryCodes { codes, hashes })
        .map_err(RuntimeError::Otp)
    }

    pub(super) async fn match_recovery_code_with(
        &self,
        loaded: &Loaded,
        typed: &str,
        hashes: &[String],
    ) -> Result<Option<u32>, RuntimeError> {
        let (typed, hashes) = (zeroize::Zeroizing::new(typed.to_owned()), hashes.to_vec());
        let deadline = self.limits.hash_deadline;
        self.second_factor_call(loaded, "second-factor.match-recovery-code", deadline, |store, world| {
            Box::pin(
                async move { world.loom_auth_second_factor().call_match_recovery_code(store, &typed, &hashes).await },
            )
        })
        .await
    }
}

impl Runtime {
    /// Whether the serving component makes second factors (exports `second-factor`).
    pub fn has_second_factor(&self) -> bool {
        self.active().second_factor.is_some()
    }

    /// A fresh TOTP secret, its `otpauth://` URI and ten recovery codes with their hashes, made
    /// by the active component on the hashing pool (ten argon2 hashes).
    pub async fn enrol_second_factor(self: &Arc<Self>, issuer: &str, account: &str) -> Result<Enrolment, RuntimeError> {
        let (issuer, account) = (issuer.to_owned(), account.to_owned());
        self.on_hash_pool(move |core, loaded| async move { core.enrol_with(&loaded, &issuer, &account).await }).await
    }

    /// The step a TOTP `code` matches at `unix_seconds`, one step either way and only after
    /// `last_used_step`. Cheap (one HMAC per step): runs on the calling task.
    pub async fn check_code(
        &self,
        secret: &[u8],
        code: &str,
        unix_seconds: u64,
        last_used_step: Option<u64>,
    ) -> Result<Option<u64>, RuntimeError> {
        self.core.check_code_with(&self.active(), secret, code, unix_seconds, last_used_step).await
    }

    /// Ten fresh recovery codes and their hashes, on the hashing pool.
    pub async fn new_recovery_codes(self: &Arc<Self>) -> Result<RecoveryCodes, RuntimeError> {
        self.on_hash_pool(move |core, loaded| async move { core.new_recovery_codes_with(&loaded).await }).await
    }

    /// Which of `hashes` the typed recovery code matches, on the hashing pool (one argon2 run
    /// per hash).
    pub async fn match_recovery_code(
        self: &Arc<Self>,
        typed: zeroize::Zeroizing<String>,
        hashes: Vec<String>,
    ) -> Result<Option<u32>, RuntimeError> {
        self.on_hash_pool(
            move |core, loaded| async move { core.match_recovery_code_with(&loaded, &typed, &hashes).await },
        )
        .await
    }
}
