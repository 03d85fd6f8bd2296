//! The policy's gate: reading the component and its settings, then signature, compile,
//! version, link and self-test, off the async workers.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};
use tokio::runtime::Handle;

use super::bindings::PolicyPre;
use super::{LoadedPolicy, MAX_SETTINGS_BYTES, POLICY_PACKAGE, PolicyInfo, PolicySettings, SelfTest, selftest};
use crate::runtime::calls::Core;
use crate::runtime::version::{compatible, exported_interface_version, host_policy_version};
use crate::runtime::{RuntimeError, Step, hex, rejected};

/// A candidate read from disk: the component's bytes and the settings, with their digests.
pub(super) struct Candidate {
    pub(super) bytes: Vec<u8>,
    pub(super) sha256: String,
    pub(super) config: String,
    pub(super) config_sha256: String,
}

/// Reads the component and the settings `settings` name.
pub(super) fn read(settings: &PolicySettings) -> Result<Candidate, RuntimeError> {
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
    use std::io::Read as _;
    let shown = path.display();
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read the policy settings {shown}: {e}"))?;
    // One open file, read to one byte past the bound: a file that grows, a FIFO or a device
    // costs no more than that.
    let mut text = String::new();
    file.take(MAX_SETTINGS_BYTES as u64 + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read the policy settings {shown}: {e}"))?;
    if text.len() > MAX_SETTINGS_BYTES {
        return Err(format!("the policy settings {shown} are larger than {MAX_SETTINGS_BYTES} bytes"));
    }
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(value @ serde_json::Value::Object(_)) => Ok(value.to_string()),
        Ok(_) => Err(format!("the policy settings {shown} must be a JSON object ({{...}})")),
        Err(error) => Err(format!("the policy settings {shown} are not JSON: {error}")),
    }
}

/// Runs the gate on a blocking thread (compiling takes seconds of CPU), so the async workers
/// keep serving meanwhile.
pub(super) async fn admit_off_the_workers(
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
