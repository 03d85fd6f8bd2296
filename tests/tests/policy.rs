//! The policy component's failures and swaps: a policy that traps, loops, sleeps, runs out of
//! memory, cannot decide or breaks the claims rules fails the request closed (`503`, counted,
//! audited), never lets it through and never leaves a session behind; the gate refuses one that
//! does so on its sample, one that is unsigned, and one that is not a policy; swaps under load
//! fail no request; `host-server policy check` shows what a policy decides.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use loom_e2e::policy::{fixture, host_with_policy, policy_calls, settings_file, shipped};
use loom_e2e::{
    HostOptions, Outcome, TestHost, binary, client, dev_signers, health, install, query_one, register, run, sha256,
    wait_for,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";
/// The one address the fixture misbehaves for (`only_for`); everyone else is allowed.
const EVE: &str = "eve@example.com";

async fn post_user(host: &TestHost, email: &str) -> reqwest::Response {
    client().post(host.url("/users/")).json(&json!({"email": email, "password": PASSWORD})).send().await.unwrap()
}

async fn post_token(host: &TestHost, form: &[(&str, &str)]) -> reqwest::Response {
    client().post(host.url("/token")).form(form).send().await.unwrap()
}

async fn log_in(host: &TestHost, email: &str) -> reqwest::Response {
    post_token(host, &[("username", email), ("password", PASSWORD)]).await
}

/// Replaces the served settings with `settings` and waits until the host decides with them.
async fn use_settings(host: &TestHost, dir: &Path, settings: &Value) {
    let digest = sha256(&settings_file(dir, "policy.json", settings));
    wait_for(host, "the new policy settings", |h| h["policy"]["settings_sha256"] == digest.as_str()).await;
}

/// A `503` that says the policy could not decide, as `{"detail"}` (and `temporarily_unavailable`
/// at the token endpoint).
async fn failed_closed(response: reqwest::Response, what: &str) {
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{what}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["detail"], "This service's sign-up and login policy could not decide; try again later", "{what}");
    if let Some(error) = body.get("error") {
        assert_eq!(error, "temporarily_unavailable", "{what}");
    }
}

fn count(host: &TestHost, query: &str) -> String {
    query_one(&host.database_url, &format!("SELECT CAST(COUNT(*) AS TEXT) FROM {query}"))
}

#[tokio::test]
async fn a_policy_that_cannot_decide_fails_each_request_closed() {
    let dir = tempfile::tempdir().unwrap();
    let options = HostOptions {
        // No reuse grace: a refresh token presented twice ends its session, so a retry that
        // works proves the failed refresh did not spend it.
        // A deadline that a busy machine keeps, and that loops and sleeps still pass quickly.
        args: [
            "--signups-per-address",
            "1000",
            "--metrics-bind",
            "127.0.0.1:0",
            "--refresh-reuse-grace",
            "0",
            "--policy-deadline-ms",
            "250",
        ]
        .map(String::from)
        .to_vec(),
        ..Default::default()
    };
    let (host, _) = host_with_policy(dir.path(), &fixture(), &json!({"only_for": EVE}), options);
    let eve = register(&host, EVE, PASSWORD).await["id"].as_i64().unwrap();
    let eve_sessions = format!("sessions WHERE user_id = {eve}");
    // Eve's refresh token and personal access token, made while the policy allows her.
    let pair: Value = log_in(&host, EVE).await.json().await.unwrap();
    let (access, refresh) = (pair["access_token"].as_str().unwrap(), pair["refresh_token"].as_str().unwrap());
    let made = client().post(host.url("/users/me/tokens")).bearer_auth(access);
    let made: Value =
        made.json(&json!({"name": "ci", "password": PASSWORD})).send().await.unwrap().json().await.unwrap();
    let pat = made["token"].as_str().unwrap().to_owned();
    let sessions_before = count(&host, &eve_sessions);

    let faults = ["trap", "loop", "sleep", "alloc", "err"];
    for (n, fault) in faults.into_iter().enumerate() {
        use_settings(&host, dir.path(), &json!({"only_for": EVE, "registration": fault})).await;
        failed_closed(post_user(&host, "Eve@example.com").await, &format!("registration: {fault}")).await;
        let others = post_user(&host, &format!("ada{n}@example.com")).await;
        assert_eq!(others.status(), StatusCode::CREATED, "registration: {fault} for someone else");
    }
    let claims_faults = ["sub", "exp", "Sub", "huge", "array", "not-json"];
    for fault in faults.into_iter().chain(claims_faults) {
        let hooks: &[&str] =
            if claims_faults.contains(&fault) { &["access-claims"] } else { &["login", "access-claims"] };
        for hook in hooks {
            use_settings(&host, dir.path(), &json!({"only_for": EVE, *hook: fault})).await;
            failed_closed(log_in(&host, EVE).await, &format!("{hook}: {fault}")).await;
            let exchange = [
                ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
                ("subject_token", pat.as_str()),
                ("subject_token_type", "urn:ietf:params:oauth:token-type:access_token"),
            ];
            failed_closed(post_token(&host, &exchange).await, &format!("exchange, {hook}: {fault}")).await;
            assert_eq!(log_in(&host, "ada0@example.com").await.status(), StatusCode::OK, "{hook}: {fault}, others");
        }
    }
    assert_eq!(count(&host, &eve_sessions), sessions_before, "no login that failed closed left a session");

    // A refresh the policy cannot decide is answered 503 and spends nothing: the same refresh
    // token works once the policy decides again.
    use_settings(&host, dir.path(), &json!({"only_for": EVE, "access-claims": "trap"})).await;
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh)];
    failed_closed(post_token(&host, &form).await, "refresh, access-claims: trap").await;
    use_settings(&host, dir.path(), &json!({"only_for": EVE, "access-claims": "claims"})).await;
    let retried = post_token(&host, &form).await;
    assert_eq!(retried.status(), StatusCode::OK, "the same refresh token, after the fault");
    let retried: Value = retried.json().await.unwrap();
    let claims = loom_e2e::policy::verified_claims(&host, retried["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["team"], "blue");

    assert!(policy_calls(&host, "registration", "fault").await >= 5);
    assert!(policy_calls(&host, "login", "fault").await >= 10);
    assert!(policy_calls(&host, "access-claims", "fault").await >= 22);
    assert!(policy_calls(&host, "access-claims", "claims").await >= 1);
    host.wait_for_log("policy.fault");
    assert!(host.logs().contains("it tried to set `sub`, which only the host sets"));
}

/// `host-server policy check PATH --config FILE`, trusting the development key.
fn check(path: &Path, settings: Option<&Path>, extra: &[&str]) -> Outcome {
    let mut command = std::process::Command::new(binary("host-server"));
    // The test hosts' deadline: the suites run side by side on a busy machine.
    command.args(["--policy-deadline-ms", loom_e2e::policy::TEST_DEADLINE_MS]);
    command.arg("--trusted-signers").arg(dev_signers()).args(["policy", "check"]).arg(path);
    if let Some(settings) = settings {
        command.arg("--config").arg(settings);
    }
    command.args(extra).env_remove("LOOM_AUTH_TRUSTED_SIGNERS").env_remove("LOOM_AUTH_ALLOW_UNSIGNED");
    run(command, None)
}

#[test]
fn the_gate_refuses_a_policy_that_misbehaves_on_its_sample() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("registration", "trap", "the policy's registration hook failed"),
        ("registration", "loop", "deadline"),
        ("login", "sleep", "deadline"),
        ("login", "alloc", "the policy's login hook failed"),
        ("login", "err", "it could not decide: the fixture policy cannot decide"),
        ("access-claims", "sub", "it tried to set `sub`"),
        ("access-claims", "exp", "it tried to set `exp`"),
        ("access-claims", "huge", "at most 4096 are allowed"),
        ("access-claims", "not-json", "its claims are not JSON"),
    ];
    for (hook, fault, why) in cases {
        let settings = settings_file(dir.path(), "bad.json", &json!({ hook: fault }));
        let outcome = check(&fixture(), Some(&settings), &[]);
        assert_eq!(outcome.code, Some(1), "{hook}: {fault}: {outcome:?}");
        assert!(outcome.stderr.contains("a host would refuse this policy at the self-test step"), "{outcome:?}");
        assert!(outcome.stderr.contains(why), "{hook}: {fault}: expected {why:?} in {}", outcome.stderr);
        assert_eq!(outcome.stderr.lines().count(), 1, "one sentence: {}", outcome.stderr);
    }
    // A host does not start with one either, nor with settings that are not a JSON object.
    let settings = settings_file(dir.path(), "bad.json", &json!({"registration": "trap"}));
    let outcome = start(dir.path(), &fixture(), &settings);
    assert_eq!(outcome.code, Some(1), "{outcome:?}");
    assert!(outcome.stderr.contains("refused at the self-test step"), "{}", outcome.stderr);
    std::fs::write(dir.path().join("list.json"), "[1, 2]").unwrap();
    let outcome = start(dir.path(), &shipped("org-claims"), &dir.path().join("list.json"));
    assert!(outcome.stderr.contains("must be a JSON object"), "{}", outcome.stderr);
    let outcome = check(&shipped("org-claims"), Some(&dir.path().join("list.json")), &[]);
    assert_eq!(outcome.code, Some(1));
    assert!(outcome.stderr.contains("at the settings step"), "{}", outcome.stderr);
}

/// `host-server` serving with `policy` and `settings`: it must refuse to start.
fn start(dir: &Path, policy: &Path, settings: &Path) -> Outcome {
    let mut command = std::process::Command::new(binary("host-server"));
    command.args(["--bind", "127.0.0.1:0", "--data-dir"]).arg(dir.join("data"));
    command.arg("--component").arg(loom_e2e::component()).arg("--trusted-signers").arg(dev_signers());
    command.arg("--policy").arg(policy).arg("--policy-config").arg(settings);
    command.env_remove("LOOM_AUTH_TRUSTED_SIGNERS").env_remove("LOOM_AUTH_ALLOW_UNSIGNED");
    run(command, None)
}

#[tokio::test]
async fn only_a_signed_policy_component_is_run() {
    let dir = tempfile::tempdir().unwrap();
    let settings = settings_file(dir.path(), "orgs.json", &json!({"orgs": {"acme.com": "acme"}}));
    let unsigned = dir.path().join("unsigned.wasm");
    std::fs::copy(shipped("org-claims"), &unsigned).unwrap();
    let outcome = start(dir.path(), &unsigned, &settings);
    assert_eq!(outcome.code, Some(1), "{outcome:?}");
    assert!(outcome.stderr.contains("refused at the signature step"), "{}", outcome.stderr);
    let outcome = check(&unsigned, Some(&settings), &[]);
    assert!(outcome.stderr.contains("at the signature step"), "{}", outcome.stderr);
    // The auth component is signed, but it is not a policy.
    let outcome = check(&loom_e2e::component(), None, &[]);
    assert!(outcome.stderr.contains("at the version step: it exports no loom:policy/decisions"), "{outcome:?}");

    // On a running host, an unsigned replacement is refused and the policy serving keeps deciding.
    let served_dir = tempfile::tempdir().unwrap();
    let orgs = json!({"orgs": {"acme.com": "acme"}});
    let (host, served) = host_with_policy(served_dir.path(), &shipped("org-claims"), &orgs, HostOptions::default());
    let serving = sha256(&served);
    std::fs::remove_file(loom_e2e::signature(&served)).unwrap();
    std::fs::copy(shipped("email-domains"), served.with_extension("new")).unwrap();
    std::fs::rename(served.with_extension("new"), &served).unwrap();
    let candidate = sha256(&served);
    let health = wait_for(&host, "the unsigned policy's refusal", |h| {
        h["policy"]["last_reload"]["sha256"] == candidate.as_str()
    })
    .await;
    assert_eq!(health["policy"]["last_reload"]["result"], "rejected");
    assert_eq!(health["policy"]["last_reload"]["step"], "signature");
    assert_eq!(health["policy"]["sha256"], serving);
    register(&host, "ada@acme.com", PASSWORD).await;
    let pair: Value = log_in(&host, "ada@acme.com").await.json().await.unwrap();
    let claims = loom_e2e::policy::verified_claims(&host, pair["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["org"], "acme", "the signed policy still decides");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn swapping_policies_under_load_fails_no_request() {
    let dir = tempfile::tempdir().unwrap();
    // Settings both policies take: org-claims reads the orgs, the fixture allows everyone.
    let settings = json!({"orgs": {"example.com": "example"}});
    let options = HostOptions { args: vec!["--signups-per-address".into(), "100000".into()], ..Default::default() };
    let (host, served) = host_with_policy(dir.path(), &shipped("org-claims"), &settings, options);
    let host = Arc::new(host);
    let (stop, done, failures) =
        (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut workers = Vec::new();
    for worker in 0..4 {
        let (host, stop, done, failures) =
            (Arc::clone(&host), Arc::clone(&stop), Arc::clone(&done), Arc::clone(&failures));
        workers.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let email = format!("user{worker}-{n}@example.com");
                n += 1;
                let registered = post_user(&host, &email).await.status();
                let logged_in = log_in(&host, &email).await.status();
                for status in [registered, logged_in] {
                    if status.is_success() {
                        done.fetch_add(1, Ordering::Relaxed);
                    } else {
                        eprintln!("{email}: {status}");
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    let progress = |at_least: usize| {
        let done = Arc::clone(&done);
        async move {
            let target = done.load(Ordering::Relaxed) + at_least;
            let deadline = Instant::now() + Duration::from_secs(60);
            while done.load(Ordering::Relaxed) < target {
                assert!(Instant::now() < deadline, "requests stopped succeeding");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    let org_claims = sha256(&served);
    for (policy, name) in
        [(fixture(), "the fixture"), (shipped("org-claims"), "org-claims"), (fixture(), "the fixture")]
    {
        progress(10).await;
        install(&policy, &served);
        let digest = sha256(&policy);
        wait_for(&host, name, |h| h["policy"]["sha256"] == digest.as_str()).await;
    }
    progress(10).await;
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }
    assert_eq!(failures.load(Ordering::Relaxed), 0, "requests failed during the swaps");
    let health = health(&host).await;
    assert_ne!(health["policy"]["sha256"], org_claims);
    assert_eq!(health["policy"]["last_reload"]["result"], "published");
    // SIGHUP reloads the policy too (here to find it unchanged).
    let hup = std::process::Command::new("kill").args(["-HUP", &host.pid().to_string()]).status().unwrap();
    assert!(hup.success());
    wait_for(&host, "the SIGHUP reload", |h| h["policy"]["last_reload"]["result"] == "unchanged").await;
}

#[test]
fn policy_check_shows_the_gate_and_what_the_policy_decides() {
    let dir = tempfile::tempdir().unwrap();
    let settings = settings_file(
        dir.path(),
        "acme.json",
        &json!({"allow_domains": ["acme.com"], "deny_domains": ["contractors.acme.com"]}),
    );
    let emails = ["--email", "ada@acme.com", "--email", "eve@contractors.acme.com"];
    let outcome = check(&shipped("email-domains"), Some(&settings), &emails);
    assert_eq!(outcome.code, Some(0), "{outcome:?}");
    let out = &outcome.stdout;
    assert!(out.contains("contract     loom:policy@0.1.0"), "{out}");
    assert!(out.contains("signature    good (a trusted key)"), "{out}");
    assert!(out.contains(&format!("sha256       {}", sha256(&shipped("email-domains")))), "{out}");
    assert!(out.contains("Self-test      passed with self-test@loom.invalid, each hook within its 1000 ms deadline"));
    let samples = out.split("Samples\n").nth(1).expect("the samples");
    assert_eq!(
        samples,
        "  ada@acme.com\n    registration   allow\n    login          allow\n    access-claims  no claims\n  \
         eve@contractors.acme.com\n    registration   deny: accounts at contractors.acme.com are not accepted here\n    \
         login          deny: accounts at contractors.acme.com are not accepted here\n    access-claims  no claims\n"
    );
    // A sample the policy cannot decide is named, and the check fails.
    let settings = settings_file(dir.path(), "f.json", &json!({"only_for": "eve@acme.com", "login": "trap"}));
    let outcome = check(&fixture(), Some(&settings), &["--email", "eve@acme.com"]);
    assert_eq!(outcome.code, Some(1), "{outcome:?}");
    assert!(outcome.stdout.contains("login          FAULT: "), "{}", outcome.stdout);
    assert!(outcome.stderr.contains("could not decide 1 of the sample requests"), "{}", outcome.stderr);
    // A path that is not there is one sentence.
    let outcome = check(&dir.path().join("missing.wasm"), None, &[]);
    assert_eq!(outcome.code, Some(1));
    assert!(outcome.stderr.starts_with("error: cannot read the policy"), "{}", outcome.stderr);
}
