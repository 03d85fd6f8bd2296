//! The policy component (`loom:policy`, optional): who may register, who may log in, and what
//! access tokens say besides the host's claims.
//!
//! It runs on the auth component's engine, under the same sandbox, signature check and
//! compiled-code cache, in a fresh instance per call with a deadline of its own. It passes a
//! gate of its own (signature, compile, version, link, and a self-test with the operator's
//! settings) before it serves, and swaps live like the auth component: the file, its signature
//! or its settings file changing, or SIGHUP. Every way it can fail (a trap, a deadline, an
//! `err`, claims it may not set) is a [`PolicyFault`], which the caller turns into a refusal:
//! the policy fails closed.

mod calls;
mod claims;
mod gate;
mod selftest;

use calls::{bounded_reason, call, call_access_claims};
pub use gate::read_settings;
use gate::{admit_off_the_workers, read};

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;

use super::calls::{Core, GuestFuture};
use super::sandbox::GuestState;
use super::{Origin, ReloadOutcome, ReloadReport, RuntimeError, Step};
use crate::telemetry::measure;

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit/policy",
        world: "policy",
        additional_derives: [PartialEq, Eq],
        exports: { default: async },
    });
}

pub use bindings::exports::loom::policy::decisions::{
    Account, Decision, LoginRequest, RegistrationRequest, RequestContext, TokenRequest,
};
use bindings::{Policy as PolicyWorld, PolicyPre};
pub use claims::{MAX_CLAIMS_BYTES, REGISTERED_CLAIMS};
pub use selftest::{SAMPLE_EMAIL, Samples, SelfTest, sample_account, samples};

/// The WIT package a policy exports, without its version.
pub const POLICY_PACKAGE: &str = "loom:policy";

/// How long one policy call may run, unless `--policy-deadline-ms` says otherwise.
pub const DEFAULT_DEADLINE: Duration = Duration::from_millis(50);

/// Largest settings document (`--policy-config`) accepted, in bytes: it is passed on every call.
pub const MAX_SETTINGS_BYTES: usize = 64 << 10;

/// Longest reason for a refusal shown to a user, in characters; a longer one is cut.
const MAX_REASON_CHARS: usize = 300;

/// The decisions a policy makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    Registration,
    Login,
    AccessClaims,
}

impl Hook {
    pub const ALL: [Hook; 3] = [Hook::Registration, Hook::Login, Hook::AccessClaims];

    /// The export's name in the contract (and the `hook` label of the metrics).
    pub fn name(self) -> &'static str {
        match self {
            Self::Registration => "registration",
            Self::Login => "login",
            Self::AccessClaims => "access-claims",
        }
    }

    fn export(self) -> &'static str {
        match self {
            Self::Registration => "policy.registration",
            Self::Login => "policy.login",
            Self::AccessClaims => "policy.access-claims",
        }
    }
}

impl std::fmt::Display for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A policy call that gave no usable answer: it trapped, ran past its deadline, answered `err`,
/// or returned claims it may not set. The request it was deciding must fail.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the policy's {hook} hook failed: {reason}")]
pub struct PolicyFault {
    pub hook: Hook,
    pub reason: String,
}

/// Where the policy and its settings are, and how long a call may run.
#[derive(Debug, Clone)]
pub struct PolicySettings {
    pub path: PathBuf,
    /// The operator's settings, a JSON object; `{}` when `None`.
    pub config: Option<PathBuf>,
    pub deadline: Duration,
}

/// What is known about the policy serving.
#[derive(Debug, Clone)]
pub struct PolicyInfo {
    pub path: PathBuf,
    /// Hex SHA-256 of the component file.
    pub sha256: String,
    /// The version of `loom:policy` it exports.
    pub wit_version: String,
    pub config_path: Option<PathBuf>,
    /// Hex SHA-256 of the settings passed to it (as compact JSON).
    pub config_sha256: String,
    pub deadline: Duration,
    pub loaded_at: SystemTime,
    pub origin: Origin,
    /// Time from reading the files to ready to serve (self-test included).
    pub load_time: Duration,
}

/// A compiled, linked policy and the settings it passed its self-test with.
pub struct LoadedPolicy {
    pre: PolicyPre<GuestState>,
    config: Arc<str>,
    info: PolicyInfo,
    /// What the self-test saw.
    self_test: SelfTest,
}

impl LoadedPolicy {
    pub fn info(&self) -> &PolicyInfo {
        &self.info
    }

    pub fn self_test(&self) -> &SelfTest {
        &self.self_test
    }
}

/// The serving policy, swapped whole (component and settings together).
pub struct Policy {
    core: Arc<Core>,
    settings: PolicySettings,
    active: ArcSwap<LoadedPolicy>,
    last_reload: Mutex<Option<ReloadReport>>,
    reloading: tokio::sync::Mutex<()>,
}

impl Policy {
    /// Loads the policy `settings` name through the whole gate, on `core`'s engine.
    pub async fn start(core: Arc<Core>, settings: PolicySettings) -> Result<Arc<Self>, RuntimeError> {
        let candidate = read(&settings)?;
        let first = admit_off_the_workers(&core, &settings, candidate).await?;
        Ok(Arc::new(Self {
            core,
            settings,
            active: ArcSwap::from_pointee(first),
            last_reload: Mutex::new(None),
            reloading: tokio::sync::Mutex::new(()),
        }))
    }

    /// The policy serving now.
    pub fn active(&self) -> Arc<LoadedPolicy> {
        self.active.load_full()
    }

    pub fn info(&self) -> PolicyInfo {
        self.active.load().info.clone()
    }

    pub fn last_reload(&self) -> Option<ReloadReport> {
        self.last_reload.lock().expect("policy reload report lock").clone()
    }

    /// The files a swap follows: the component, its signature and the settings.
    pub fn watched_files(&self) -> Vec<PathBuf> {
        let mut files = vec![self.settings.path.clone(), super::signature_path(&self.settings.path)];
        files.extend(self.settings.config.clone());
        files
    }

    /// Reads the component and its settings again and, if either changed and the pair passes
    /// every step, publishes it.
    pub async fn reload(&self) -> ReloadReport {
        let _one_at_a_time = self.reloading.lock().await;
        let report = match read(&self.settings) {
            Err(RuntimeError::Rejected { step, reason }) => {
                ReloadReport { at: SystemTime::now(), sha256: None, outcome: ReloadOutcome::Rejected { step, reason } }
            }
            Err(other) => ReloadReport {
                at: SystemTime::now(),
                sha256: None,
                outcome: ReloadOutcome::Rejected { step: Step::Read, reason: other.to_string() },
            },
            Ok(candidate) => {
                let sha256 = candidate.sha256.clone();
                let serving = self.active.load();
                let outcome = if sha256 == serving.info.sha256 && candidate.config_sha256 == serving.info.config_sha256
                {
                    ReloadOutcome::Unchanged
                } else {
                    match admit_off_the_workers(&self.core, &self.settings, candidate).await {
                        Ok(loaded) => {
                            self.active.store(Arc::new(loaded));
                            ReloadOutcome::Published
                        }
                        Err(RuntimeError::Rejected { step, reason }) => ReloadOutcome::Rejected { step, reason },
                        Err(other) => ReloadOutcome::Rejected { step: Step::Compile, reason: other.to_string() },
                    }
                };
                ReloadReport { at: SystemTime::now(), sha256: Some(sha256), outcome }
            }
        };
        *self.last_reload.lock().expect("policy reload report lock") = Some(report.clone());
        report
    }

    /// Whether a registration may go ahead.
    pub async fn registration(&self, request: &RegistrationRequest) -> Result<Decision, PolicyFault> {
        let loaded = self.active();
        let request = request.clone();
        let config = Arc::clone(&loaded.config);
        let answer = self
            .decide(&loaded, Hook::Registration, |store, world| {
                Box::pin(async move { world.loom_policy_decisions().call_registration(store, &config, &request).await })
            })
            .await;
        measured(Hook::Registration, answer)
    }

    /// Whether a login (a right password and second factor, or a personal access token) may
    /// go ahead.
    pub async fn login(&self, request: &LoginRequest) -> Result<Decision, PolicyFault> {
        let loaded = self.active();
        let request = request.clone();
        let config = Arc::clone(&loaded.config);
        let answer = self
            .decide(&loaded, Hook::Login, |store, world| {
                Box::pin(async move { world.loom_policy_decisions().call_login(store, &config, &request).await })
            })
            .await;
        measured(Hook::Login, answer)
    }

    /// The claims to add to an access token, checked: names and JSON values.
    pub async fn access_claims(&self, request: &TokenRequest) -> Result<Vec<(String, String)>, PolicyFault> {
        let started = Instant::now();
        let loaded = self.active();
        let answer = call_access_claims(&self.core, &loaded, request).await;
        measure::policy_call(
            Hook::AccessClaims.name(),
            if answer.is_ok() { "claims" } else { "fault" },
            started.elapsed(),
        );
        answer
    }

    async fn decide(
        &self,
        loaded: &LoadedPolicy,
        hook: Hook,
        f: impl for<'a> FnOnce(
            &'a mut wasmtime::Store<GuestState>,
            PolicyWorld,
        ) -> GuestFuture<'a, Result<Decision, String>>,
    ) -> (Result<Decision, PolicyFault>, Instant) {
        let started = Instant::now();
        let answer = call(&self.core, loaded, hook, f).await.map(bounded_reason);
        (answer, started)
    }
}

/// Records a decision's outcome and time, and hands it on.
fn measured(hook: Hook, (answer, started): (Result<Decision, PolicyFault>, Instant)) -> Result<Decision, PolicyFault> {
    let outcome = match &answer {
        Ok(Decision::Allow) => "allow",
        Ok(Decision::Deny(_)) => "deny",
        Err(_) => "fault",
    };
    measure::policy_call(hook.name(), outcome, started.elapsed());
    answer
}
