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

mod claims;
mod selftest;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use sha2::{Digest, Sha256};
use tokio::runtime::Handle;

use super::calls::{Core, GuestFuture};
use super::sandbox::GuestState;
use super::version::{compatible, exported_interface_version, host_policy_version};
use super::{Origin, ReloadOutcome, ReloadReport, RuntimeError, Step, hex, rejected};
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
pub use selftest::{SAMPLE_EMAIL, SelfTest, sample_account};

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

/// A candidate read from disk: the component's bytes and the settings, with their digests.
struct Candidate {
    bytes: Vec<u8>,
    sha256: String,
    config: String,
    config_sha256: String,
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

/// Calls a hook of `loaded` in a fresh sandboxed instance within the policy's deadline; an
/// `err` from the policy is a fault like a trap.
async fn call<R>(
    core: &Core,
    loaded: &LoadedPolicy,
    hook: Hook,
    f: impl for<'a> FnOnce(&'a mut wasmtime::Store<GuestState>, PolicyWorld) -> GuestFuture<'a, Result<R, String>>,
) -> Result<R, PolicyFault> {
    let ran = core
        .sandboxed(&loaded.info.sha256, loaded.info.deadline, hook.export(), async |store| {
            let world = loaded.pre.instantiate_async(&mut *store).await?;
            f(store, world).await
        })
        .await;
    match ran {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(reason)) => Err(PolicyFault { hook, reason: format!("it could not decide: {}", cut(&reason)) }),
        Err(RuntimeError::Trap(text)) => {
            tracing::debug!(%hook, sha256 = %loaded.info.sha256, trap = %text, "the policy trapped");
            Err(PolicyFault { hook, reason: trap_reason(hook, &text, loaded.info.deadline) })
        }
        Err(error) => Err(PolicyFault { hook, reason: error.to_string() }),
    }
}

/// A trap in one line: a deadline passed, or the trap's cause without the guest's backtrace
/// (which goes to the log at `debug`).
fn trap_reason(hook: Hook, text: &str, deadline: Duration) -> String {
    if text.contains("wasm trap: interrupt") || text.contains("still running after") {
        return format!("it ran past its {} ms deadline", deadline.as_millis());
    }
    let last = text.lines().rev().map(str::trim).find(|line| !line.is_empty()).unwrap_or_default();
    let cause = last.split_once(&format!("#{}: ", hook.name())).map_or(last, |(_, cause)| cause);
    format!("it trapped: {}", cut(cause.strip_prefix("wasm trap: ").unwrap_or(cause)))
}

async fn call_access_claims(
    core: &Core,
    loaded: &LoadedPolicy,
    request: &TokenRequest,
) -> Result<Vec<(String, String)>, PolicyFault> {
    let request = request.clone();
    let config = Arc::clone(&loaded.config);
    let document = call(core, loaded, Hook::AccessClaims, |store, world| {
        Box::pin(async move { world.loom_policy_decisions().call_access_claims(store, &config, &request).await })
    })
    .await?;
    claims::check(&document).map_err(|reason| PolicyFault { hook: Hook::AccessClaims, reason })
}

/// A refusal's reason as a user may be shown it: control characters dropped, cut to
/// [`MAX_REASON_CHARS`], and never empty.
fn bounded_reason(decision: Decision) -> Decision {
    match decision {
        Decision::Allow => Decision::Allow,
        Decision::Deny(reason) => {
            let reason = cut(reason.trim());
            Decision::Deny(if reason.is_empty() { "refused by this service's policy".into() } else { reason })
        }
    }
}

fn cut(text: &str) -> String {
    let clean: String = text.chars().filter(|c| !c.is_control()).collect();
    match clean.char_indices().nth(MAX_REASON_CHARS) {
        Some((at, _)) => format!("{}…", &clean[..at]),
        None => clean,
    }
}

/// Reads the component and the settings `settings` name.
fn read(settings: &PolicySettings) -> Result<Candidate, RuntimeError> {
    let bytes =
        std::fs::read(&settings.path).map_err(|source| RuntimeError::Read { path: settings.path.clone(), source })?;
    let config = match &settings.config {
        None => "{}".to_owned(),
        Some(path) => read_settings(path).map_err(|reason| RuntimeError::Rejected { step: Step::Settings, reason })?,
    };
    Ok(Candidate {
        sha256: hex(&Sha256::digest(&bytes)),
        config_sha256: hex(&Sha256::digest(config.as_bytes())),
        bytes,
        config,
    })
}

/// The settings file as compact JSON, if it holds a JSON object of at most
/// [`MAX_SETTINGS_BYTES`].
pub fn read_settings(path: &Path) -> Result<String, String> {
    let shown = path.display();
    let size = std::fs::metadata(path).map_err(|e| format!("cannot read the policy settings {shown}: {e}"))?.len();
    if size > MAX_SETTINGS_BYTES as u64 {
        return Err(format!("the policy settings {shown} are {size} bytes; at most {MAX_SETTINGS_BYTES} are allowed"));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read the policy settings {shown}: {e}"))?;
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(value @ serde_json::Value::Object(_)) => Ok(value.to_string()),
        Ok(_) => Err(format!("the policy settings {shown} must be a JSON object ({{...}})")),
        Err(error) => Err(format!("the policy settings {shown} are not JSON: {error}")),
    }
}

/// Runs the gate on a blocking thread (compiling takes seconds of CPU), so the async workers
/// keep serving meanwhile.
async fn admit_off_the_workers(
    core: &Arc<Core>,
    settings: &PolicySettings,
    candidate: Candidate,
) -> Result<LoadedPolicy, RuntimeError> {
    let (core, settings, handle) = (Arc::clone(core), settings.clone(), Handle::current());
    tokio::task::spawn_blocking(move || handle.block_on(admit(&core, &settings, candidate)))
        .await
        .map_err(|e| RuntimeError::Trap(format!("the policy loader failed: {e}")))?
}

/// Signature, compile, version, link, self-test.
async fn admit(core: &Core, settings: &PolicySettings, candidate: Candidate) -> Result<LoadedPolicy, RuntimeError> {
    let started = Instant::now();
    let Candidate { bytes, sha256, config, config_sha256 } = candidate;
    core.trust
        .check(&settings.path, &bytes)
        .map_err(|reason| RuntimeError::Rejected { step: Step::Signature, reason })?;
    let (component, origin) = core.compile(&bytes, &sha256)?;
    let prefix = format!("{POLICY_PACKAGE}/decisions@");
    let wit_version =
        exported_interface_version(&core.engine, &component, &prefix).ok_or_else(|| RuntimeError::Rejected {
            step: Step::Version,
            reason: format!("it exports no {POLICY_PACKAGE}/decisions interface: is it a policy component?"),
        })?;
    if !compatible(&wit_version, host_policy_version()) {
        return Err(RuntimeError::Rejected {
            step: Step::Version,
            reason: format!(
                "it exports {POLICY_PACKAGE}@{wit_version}; this host speaks {POLICY_PACKAGE}@{}",
                host_policy_version()
            ),
        });
    }
    let pre = core.linker.instantiate_pre(&component).map_err(|e| rejected(Step::Link, e))?;
    let pre = PolicyPre::new(pre).map_err(|e| rejected(Step::Link, e))?;
    let info = PolicyInfo {
        path: settings.path.clone(),
        sha256,
        wit_version,
        config_path: settings.config.clone(),
        config_sha256,
        deadline: settings.deadline,
        loaded_at: SystemTime::now(),
        origin,
        load_time: Duration::ZERO,
    };
    let mut loaded = LoadedPolicy { pre, config: config.into(), info, self_test: SelfTest::default() };
    loaded.self_test =
        selftest::run(core, &loaded).await.map_err(|reason| RuntimeError::Rejected { step: Step::SelfTest, reason })?;
    loaded.info.load_time = started.elapsed();
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trap_is_told_in_one_line() {
        let trap = "policy.login: error while executing at wasm backtrace:\n    0:   0x5e30 - p.wasm!abort\n    \
                    1:   0x5e4d - p.wasm!loom:policy/decisions@0.1.0#login: wasm trap: wasm `unreachable` instruction \
                    executed";
        let deadline = Duration::from_millis(50);
        assert_eq!(trap_reason(Hook::Login, trap, deadline), "it trapped: wasm `unreachable` instruction executed");
        let grown = "x\n  9:   0x5e30 - p.wasm!loom:policy/decisions@0.1.0#login: forcing trap when growing memory";
        assert_eq!(trap_reason(Hook::Login, grown, deadline), "it trapped: forcing trap when growing memory");
        let late = "policy.login: error while executing at wasm backtrace:\n 4: x#login: wasm trap: interrupt";
        assert_eq!(trap_reason(Hook::Login, late, deadline), "it ran past its 50 ms deadline");
        let slept = "policy.login: still running after its 50ms deadline";
        assert_eq!(trap_reason(Hook::Login, slept, deadline), "it ran past its 50 ms deadline");
    }

    #[test]
    fn reasons_are_bounded_and_never_empty() {
        assert_eq!(
            bounded_reason(Decision::Deny("  \n".into())),
            Decision::Deny("refused by this service's policy".into())
        );
        assert_eq!(bounded_reason(Decision::Deny("no\u{7}pe".into())), Decision::Deny("nope".into()));
        let Decision::Deny(long) = bounded_reason(Decision::Deny("é".repeat(1000))) else { panic!() };
        assert_eq!(long.chars().count(), MAX_REASON_CHARS + 1);
        assert!(long.ends_with('…'));
    }
}
