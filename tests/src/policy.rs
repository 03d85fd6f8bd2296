//! Policy components for the tests: the shipped ones, the misbehaving fixture, their settings
//! files, and a host serving one from a directory of its own (so a test can replace it).

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::{HostOptions, TestHost, built_component, client, in_ci, install, skips};

/// A Rust policy `just build-guest` makes: `email-domains`, `invite-only`, `org-claims`.
pub fn shipped(name: &str) -> PathBuf {
    built_component(&format!("policies/{name}.wasm"))
}

/// The misbehaving policy `just build-fixtures` makes; its settings say how it misbehaves.
pub fn fixture() -> PathBuf {
    built_component("fixtures/policy.wasm")
}

/// The Python policy `just build-python-policy` makes (with componentize-py). Without it,
/// outside CI, says loudly that the test does not run; under `CI=true`, fails.
pub fn python() -> Option<PathBuf> {
    let target = crate::bin_dir().parent().expect("target/<profile> has a parent").to_owned();
    let path = target.join("components/policies/plans.wasm");
    if path.exists() {
        return Some(path);
    }
    assert!(!in_ci(), "{} is missing: `just test` builds it (`just build-python-policy`)", path.display());
    skips::did_not_run(&format!("{} is missing (no python3 venv for componentize-py?)", path.display()));
    None
}

/// Writes `settings` as the JSON file `name` in `dir` (replacing it by rename, as an editor
/// would), and returns its path.
pub fn settings_file(dir: &Path, name: &str, settings: &Value) -> PathBuf {
    let path = dir.join(name);
    let staging = dir.join(format!(".{name}.writing"));
    std::fs::write(&staging, settings.to_string()).expect("the settings are written");
    std::fs::rename(&staging, &path).expect("the settings are renamed into place");
    path
}

/// The policy deadline of test hosts, unless a test sets one.
pub const TEST_DEADLINE_MS: &str = "1000";

/// A host serving a copy of `policy` from `dir` (as `policy.wasm`, signature beside it) with
/// `settings` in `dir/policy.json`: replace either to swap. `options.args` may add more.
pub fn host_with_policy(dir: &Path, policy: &Path, settings: &Value, options: HostOptions) -> (TestHost, PathBuf) {
    let served = dir.join("policy.wasm");
    install(policy, &served);
    let config = settings_file(dir, "policy.json", settings);
    let mut args = vec!["--policy".to_owned(), path_arg(&served), "--policy-config".to_owned(), path_arg(&config)];
    if !options.args.iter().any(|a| a == "--policy-deadline-ms") {
        // The deadline is wall time: on 2 cores busy with other tests' password hashes, a call
        // that takes microseconds alone can wait tens of milliseconds for a core.
        args.extend(["--policy-deadline-ms".to_owned(), TEST_DEADLINE_MS.to_owned()]);
    }
    args.extend(options.args.clone());
    (TestHost::spawn_with(HostOptions { args, ..options }), served)
}

fn path_arg(path: &Path) -> String {
    path.to_str().expect("temporary paths are UTF-8").to_owned()
}

/// The claims of an access token `host` issued, checked with its published JWKS alone (EdDSA,
/// its issuer and audience), as another service would.
pub async fn verified_claims(host: &TestHost, token: &str) -> Value {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header, jwk::JwkSet};
    let set: JwkSet = client().get(host.url("/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();
    let kid = decode_header(token).expect("a JWT header").kid.expect("a kid");
    let jwk = set.find(&kid).unwrap_or_else(|| panic!("the JWKS has no key {kid}"));
    let key = DecodingKey::from_jwk(jwk).expect("a usable JWK");
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&["loom"]);
    validation.set_issuer(&["loom-auth"]);
    decode::<Value>(token, &key, &validation).expect("the token verifies with the JWKS").claims
}

/// How many policy calls of `hook` ended in `outcome`, from the host's `/metrics`.
pub async fn policy_calls(host: &TestHost, hook: &str, outcome: &str) -> u64 {
    let text = client().get(host.metrics_url()).send().await.unwrap().text().await.unwrap();
    let wanted = format!(r#"loom_policy_calls_total{{hook="{hook}",outcome="{outcome}"}}"#);
    text.lines().find_map(|line| line.strip_prefix(&wanted).map(|n| n.trim().parse().expect("a count"))).unwrap_or(0)
}
