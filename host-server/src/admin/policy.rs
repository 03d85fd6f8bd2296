//! `host-server policy check PATH`: a policy through the gate a host would run it through, then
//! a few sample decisions, printed; so an operator sees what it decides before it serves.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;

use crate::config::Config;
use crate::runtime::policy::{Decision, Policy, PolicySettings, SAMPLE_EMAIL, Samples, samples};
use crate::runtime::{Core, RuntimeError, host_policy_version};

/// The address asked about when no `--email` is given.
const DEFAULT_SAMPLE: &str = "ada@example.com";

pub struct Check {
    pub path: PathBuf,
    pub config: Option<PathBuf>,
    pub emails: Vec<String>,
    pub username: Option<String>,
}

pub async fn check(config: &Config, check: Check) -> anyhow::Result<()> {
    let trust = config.trust()?;
    let signature = if config.allow_unsigned { "not checked (--allow-unsigned)" } else { "good (a trusted key)" };
    let core = Arc::new(Core::new(config.limits(), None, trust)?);
    let deadline = Duration::from_millis(config.policy_deadline_ms);
    let settings = PolicySettings { path: check.path.clone(), config: check.config.clone(), deadline };
    println!("Policy         {}", check.path.display());
    let policy = match Policy::start(core, settings).await {
        Ok(policy) => policy,
        Err(RuntimeError::Rejected { step, reason }) => {
            bail!("a host would refuse this policy at the {step} step: {reason}")
        }
        Err(RuntimeError::Read { path, source }) => bail!("cannot read the policy {}: {source}", path.display()),
        Err(other) => bail!("cannot load the policy: {other}"),
    };
    let loaded = policy.active();
    let info = loaded.info();
    println!("  sha256       {}", info.sha256);
    println!("  contract     loom:policy@{} (this host speaks {})", info.wit_version, host_policy_version());
    println!("  signature    {signature}");
    match &info.config_path {
        Some(path) => println!("  settings     {} (sha256 {})", path.display(), info.config_sha256),
        None => println!("  settings     {{}} (no --config)"),
    }
    println!("  ready in     {} ms (compiled and self-tested)", info.load_time.as_millis());
    println!("Self-test      passed with {SAMPLE_EMAIL}, each hook within its {} ms deadline", deadline.as_millis());
    let test = loaded.self_test();
    if let Some((decision, took)) = &test.registration {
        println!("  registration   {:>9}  {}", ms(*took), shown(decision));
    }
    if let Some((decision, took)) = &test.login {
        println!("  login          {:>9}  {}", ms(*took), shown(decision));
    }
    if let Some((claims, took)) = &test.access_claims {
        println!("  access-claims  {:>9}  {}", ms(*took), claims_shown(claims));
    }
    let emails = if check.emails.is_empty() { vec![DEFAULT_SAMPLE.to_owned()] } else { check.emails };
    let now = crate::tokens::unix_now();
    let mut faults = 0;
    println!("Samples");
    for email in emails {
        let email = crate::accounts::email::normalize(email.trim())
            .map_err(|reason| anyhow::anyhow!("--email {email} is not a valid email address: {reason}"))?;
        println!("  {email}");
        let Samples { registration, login, token } = samples(&email, check.username.as_deref(), now);
        let answers = [
            ("registration", policy.registration(&registration).await.map(|d| shown(&d))),
            ("login", policy.login(&login).await.map(|d| shown(&d))),
            ("access-claims", policy.access_claims(&token).await.map(|c| claims_shown(&c))),
        ];
        for (hook, answer) in answers {
            match answer {
                Ok(text) => println!("    {hook:<14} {text}"),
                Err(fault) => {
                    faults += 1;
                    println!("    {hook:<14} FAULT: {} (such a request would fail with 503)", fault.reason);
                }
            }
        }
    }
    if faults > 0 {
        bail!("the policy could not decide {faults} of the sample requests; a host would answer them 503");
    }
    Ok(())
}

fn shown(decision: &Decision) -> String {
    match decision {
        Decision::Allow => "allow".into(),
        Decision::Deny(reason) => format!("deny: {reason}"),
    }
}

fn claims_shown(claims: &[(String, String)]) -> String {
    if claims.is_empty() {
        return "no claims".into();
    }
    let pairs: Vec<String> =
        claims.iter().map(|(name, value)| format!("{}:{value}", serde_json::json!(name))).collect();
    format!("{{{}}}", pairs.join(","))
}

fn ms(took: Duration) -> String {
    format!("{:.2} ms", took.as_secs_f64() * 1000.0)
}
