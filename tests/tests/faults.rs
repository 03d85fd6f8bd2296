//! A component that faults on any export (traps, loops, hoards memory, sleeps
//! in a host call) fails the one request that met it with a `503`; the next
//! request is served, and no host thread panics. What it prints is logged,
//! bounded. The fixture `evil.wasm` passes the gate and misbehaves on triggers.

use std::time::{Duration, Instant};

use loom_e2e::{HostOptions, TestHost, built_component, client, login, register};
use reqwest::StatusCode;
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";
const FAULTS: [&str; 4] = ["loop-forever", "trap-now", "alloc-forever", "sleep-now"];
const HASH_DEADLINE_MS: u64 = 2000;
const TOKEN_DEADLINE_MS: u64 = 250;

fn evil_host(dir: &std::path::Path, extra: &[&str]) -> TestHost {
    let mut args = vec![
        "--hash-deadline-ms".to_owned(),
        HASH_DEADLINE_MS.to_string(),
        "--token-deadline-ms".to_owned(),
        TOKEN_DEADLINE_MS.to_string(),
    ];
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    let options = HostOptions {
        component: Some(built_component("fixtures/evil.wasm")),
        args,
        log_filter: Some("info,host_server::runtime=debug".into()),
        ..Default::default()
    };
    TestHost::spawn_in(dir, options)
}

/// A `503` with a `detail`, and how long it took.
async fn unavailable(what: &str, request: reqwest::RequestBuilder) -> Duration {
    let started = Instant::now();
    let response = request.send().await.unwrap_or_else(|e| panic!("{what}: no answer: {e}"));
    let took = started.elapsed();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{what}");
    let body: Value = response.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("temporarily unavailable"), "{what}: {body}");
    took
}

/// No host thread panicked (the guest's own panic messages come in the log's
/// "the auth component printed" lines, and are fine).
fn assert_no_panic(host: &TestHost) {
    let logs = host.logs();
    let host_panic = logs.lines().find(|l| l.contains("panicked") && !l.contains("the auth component printed"));
    assert!(host_panic.is_none(), "a host thread panicked:\n{logs}");
}

#[tokio::test]
async fn a_fault_on_hashing_checking_or_verifying_fails_one_request() {
    let dir = tempfile::tempdir().unwrap();
    let host = evil_host(dir.path(), &[]);
    register(&host, "ada@example.com", PASSWORD).await;
    let token = login(&host, "ada@example.com", PASSWORD).await;
    for fault in FAULTS {
        // passwords.hash
        let signup = client().post(host.url("/users/")).json(&json!({ "email": "x@example.com", "password": fault }));
        let took = unavailable(&format!("hash: {fault}"), signup).await;
        if fault == "sleep-now" {
            // A guest asleep in a host call is stopped at the hashing deadline, not after its 600 s.
            let deadline = Duration::from_millis(HASH_DEADLINE_MS);
            assert!(took >= deadline && took < deadline + Duration::from_millis(900), "slept for {took:?}");
        }
        register(&host, &format!("after-hash-{fault}@example.com"), PASSWORD).await;

        // passwords.verify
        let form = [("username", "ada@example.com"), ("password", fault)];
        unavailable(&format!("check: {fault}"), client().post(host.url("/token")).form(&form)).await;
        login(&host, "ada@example.com", PASSWORD).await;

        // tokens.verify
        let me = client().get(host.url("/users/me/")).bearer_auth(fault);
        let took = unavailable(&format!("verify: {fault}"), me).await;
        assert!(took < Duration::from_millis(TOKEN_DEADLINE_MS + 900), "{fault}: verify took {took:?}");
        let ok = client().get(host.url("/users/me/")).bearer_auth(&token).send().await.unwrap();
        assert_eq!(ok.status(), StatusCode::OK, "after verify: {fault}");
    }
    assert_no_panic(&host);
}

#[tokio::test]
async fn a_fault_while_issuing_fails_the_login_alone() {
    // The fixture misbehaves in `issue` on the host's issuer setting (for every
    // subject but the self-test's); the hosts share one data directory, so the
    // component is compiled once.
    let dir = tempfile::tempdir().unwrap();
    for fault in FAULTS {
        let host = evil_host(dir.path(), &["--issuer", fault]);
        let email = format!("issue-{fault}@example.com");
        register(&host, &email, PASSWORD).await;
        let form = [("username", email.as_str()), ("password", PASSWORD)];
        let took = unavailable(&format!("issue: {fault}"), client().post(host.url("/token")).form(&form)).await;
        assert!(took < Duration::from_secs(5), "{fault}: the login took {took:?}");
        // The host carries on: the next request (another account) is served.
        register(&host, &format!("next-{fault}@example.com"), PASSWORD).await;
        assert_no_panic(&host);
        host.stop();
    }
}

#[tokio::test]
async fn what_a_component_prints_is_logged_bounded_and_tagged() {
    let dir = tempfile::tempdir().unwrap();
    let host = evil_host(dir.path(), &[]);
    // The fixture prints 1 MiB, then hashes as usual.
    register(&host, "printer@example.com", "print-now").await;
    let logs = host.logs();
    let line = logs.lines().find(|l| l.contains("the auth component printed")).unwrap_or_else(|| panic!("{logs}"));
    let sha = loom_e2e::sha256(&built_component("fixtures/evil.wasm"));
    assert!(line.contains(&format!("sha256={sha}")) && line.contains("export=\"passwords.hash\""), "{line}");
    assert!(line.contains("a fixture that prints too much"), "{line}");
    assert!(line.len() < 2 * 4096 + 1024, "the printed output is bounded, got {} bytes", line.len());
    let dropped: u64 = line.split("dropped_bytes=").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    assert!(dropped > 1_000_000, "{line}");
}
