//! Swapping the auth component on a running host: under load, through the
//! validation gate, with re-hashing, the compiled-code cache and SIGHUP.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use loom_e2e::{
    HostOptions, TestHost, binary, built_component, client, health, install, login, register, run, sha256, wait_for,
};
use serde_json::Value;

const EMAIL: &str = "ada@example.com";
const PASSWORD: &str = "correct horse battery staple";

/// A host serving a copy of the default component from its own directory, so tests can replace it.
fn host_with_swappable_component(dir: &Path, options: HostOptions) -> (TestHost, std::path::PathBuf) {
    let served = dir.join("auth.wasm");
    install(&loom_e2e::component(), &served);
    let host = TestHost::spawn_with(HostOptions { component: Some(served.clone()), ..options });
    (host, served)
}

async fn stored_hash(host: &TestHost) -> String {
    let url = format!("sqlite://{}", host.data_dir.join("loom-auth.db").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let hash: String = sqlx::query_scalar("SELECT hashed_password FROM users").fetch_one(&pool).await.unwrap();
    pool.close().await;
    hash
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn swaps_under_load_drop_no_request() {
    let dir = tempfile::tempdir().unwrap();
    let (host, served) = host_with_swappable_component(dir.path(), HostOptions::default());
    let host = Arc::new(host);
    register(&host, EMAIL, PASSWORD).await;
    let token = login(&host, EMAIL, PASSWORD).await;
    let original = sha256(&served);
    let hardened = built_component("auth-guest-hardened.wasm");
    let broken = built_component("fixtures/wrong.wasm");

    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for worker in 0..4 {
        let (host, token, stop, done) = (Arc::clone(&host), token.clone(), Arc::clone(&stop), Arc::clone(&done));
        clients.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            let http = client();
            while !stop.load(Ordering::Relaxed) {
                let response = if worker % 2 == 0 {
                    http.post(host.url("/token")).form(&[("username", EMAIL), ("password", PASSWORD)]).send().await
                } else {
                    http.get(host.url("/users/me/")).bearer_auth(&token).send().await
                };
                match response {
                    Ok(r) if r.status() == 200 => {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(r) => failures.push(format!("{} {}", r.status(), r.text().await.unwrap_or_default())),
                    Err(e) => failures.push(e.to_string()),
                }
            }
            failures
        }));
    }
    // Watch the served digest throughout.
    let digests = {
        let (host, stop) = (Arc::clone(&host), Arc::clone(&stop));
        tokio::spawn(async move {
            let mut seen: Vec<String> = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let digest = health(&host).await["component"]["sha256"].as_str().unwrap().to_owned();
                if seen.last() != Some(&digest) {
                    seen.push(digest);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            seen
        })
    };
    // Waits for `at_least` more answered requests; fails (rather than hang) when they stop coming.
    let progress = |at_least: usize| {
        let done = Arc::clone(&done);
        async move {
            let target = done.load(Ordering::Relaxed) + at_least;
            let deadline = Instant::now() + Duration::from_secs(60);
            while done.load(Ordering::Relaxed) < target {
                assert!(
                    Instant::now() < deadline,
                    "requests stopped succeeding: {} answered",
                    done.load(Ordering::Relaxed)
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };

    progress(20).await;
    install(&hardened, &served);
    let hardened_sha = sha256(&hardened);
    wait_for(&host, "the hardened component", |h| h["component"]["sha256"] == hardened_sha.as_str()).await;
    progress(20).await;

    install(&broken, &served);
    let broken_sha = sha256(&broken);
    let health = wait_for(&host, "the broken component's rejection", |h| {
        h["last_reload"]["sha256"] == broken_sha.as_str() && h["last_reload"]["result"] == "rejected"
    })
    .await;
    assert_eq!(health["last_reload"]["step"], "self-test", "{health}");
    assert_eq!(health["component"]["sha256"], hardened_sha.as_str());
    progress(20).await;

    install(&loom_e2e::component(), &served);
    wait_for(&host, "the original component again", |h| h["component"]["sha256"] == original.as_str()).await;
    progress(20).await;

    stop.store(true, Ordering::Relaxed);
    let mut failures = Vec::new();
    for client in clients {
        failures.extend(client.await.unwrap());
    }
    assert!(failures.is_empty(), "{} failed requests: {:?}", failures.len(), &failures[..failures.len().min(5)]);
    assert_eq!(digests.await.unwrap(), [original.clone(), hardened_sha, original], "digest changes");
    // The token issued before the swaps still works.
    let me = client().get(host.url("/users/me/")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(me.status(), 200);
    host.wait_for_log("refused the candidate auth component at the self-test step");
}

#[tokio::test]
async fn a_dearer_component_upgrades_stored_hashes_at_login() {
    let dir = tempfile::tempdir().unwrap();
    let (host, served) = host_with_swappable_component(dir.path(), HostOptions::default());
    register(&host, EMAIL, PASSWORD).await;
    assert!(stored_hash(&host).await.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));

    let hardened = built_component("auth-guest-hardened.wasm");
    install(&hardened, &served);
    let sha = sha256(&hardened);
    wait_for(&host, "the hardened component", |h| h["component"]["sha256"] == sha.as_str()).await;

    login(&host, EMAIL, PASSWORD).await;
    let upgraded = stored_hash(&host).await;
    assert!(upgraded.starts_with("$argon2id$v=19$m=32768,t=3,p=1$"), "{upgraded}");
    let token = login(&host, EMAIL, PASSWORD).await;
    assert_eq!(stored_hash(&host).await, upgraded, "an up-to-date hash is left alone");
    let me = client().get(host.url("/users/me/")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(me.status(), 200);
    let wrong =
        client().post(host.url("/token")).form(&[("username", EMAIL), ("password", "wrong")]).send().await.unwrap();
    assert_eq!(wrong.status(), 401);
}

/// Logins racing to upgrade the same hash: the first to store its new hash wins the upgrade,
/// and the others, checked against the hash it replaced, still log in (the password did not
/// change). CI saw one of them answered `401`, as if the password had been changed meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logins_racing_to_upgrade_a_hash_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    // Logins in flight count against the account's allowance of failures: room for six.
    let options = HostOptions { args: vec!["--login-max-failures".into(), "100".into()], ..Default::default() };
    let (host, served) = host_with_swappable_component(dir.path(), options);
    register(&host, EMAIL, PASSWORD).await;
    let hardened = built_component("auth-guest-hardened.wasm");
    install(&hardened, &served);
    let sha = sha256(&hardened);
    wait_for(&host, "the hardened component", |h| h["component"]["sha256"] == sha.as_str()).await;

    let logins = (0..6).map(|_| {
        let url = host.url("/token");
        tokio::spawn(async move {
            let form = [("username", EMAIL), ("password", PASSWORD)];
            let response = client().post(&url).form(&form).send().await.unwrap();
            (response.status(), response.text().await.unwrap())
        })
    });
    for login in logins.collect::<Vec<_>>() {
        let (status, body) = login.await.unwrap();
        assert_eq!(status, 200, "{body}");
    }
    assert!(stored_hash(&host).await.starts_with("$argon2id$v=19$m=32768,t=3,p=1$"));
    host.wait_for_log("kept a password hash that changed during the upgrade");
}

#[tokio::test]
async fn sighup_makes_the_host_check_its_component_again() {
    // The reload's log line names its trigger: the signal, not a file event or a timer.
    let host = TestHost::spawn_with(HostOptions {
        log_filter: Some("info,host_server::reload=debug".into()),
        ..Default::default()
    });
    assert_eq!(health(&host).await["last_reload"], Value::Null);
    let kill = run(
        {
            let mut command = std::process::Command::new("kill");
            command.args(["-HUP", &host.pid().to_string()]);
            command
        },
        None,
    );
    assert_eq!(kill.code, Some(0), "{kill:?}");
    let health = wait_for(&host, "a reload after SIGHUP", |h| !h["last_reload"].is_null()).await;
    assert_eq!(health["last_reload"]["result"], "unchanged", "{health}");
    host.wait_for_log("trigger=\"SIGHUP\"");
}

#[tokio::test]
async fn a_rejected_swap_shows_its_step_on_healthz_and_its_reason_only_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let (host, served) = host_with_swappable_component(dir.path(), HostOptions::default());
    let candidate = built_component("fixtures/wit-next.wasm");
    install(&candidate, &served);
    let candidate_sha = sha256(&candidate);
    let health = wait_for(&host, "the rejection", |h| h["last_reload"]["sha256"] == candidate_sha.as_str()).await;
    let last_reload = health["last_reload"].as_object().unwrap();
    let mut fields: Vec<&str> = last_reload.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["at", "result", "sha256", "step"], "{health}");
    assert_eq!((&last_reload["result"], &last_reload["step"]), (&"rejected".into(), &"version".into()));
    let text = health.to_string();
    assert!(!text.contains(&dir.path().display().to_string()) && !text.contains("loom:auth@0.3"), "{text}");
    host.wait_for_log("at the version step: it exports loom:auth@0.3.0");
}

#[tokio::test]
async fn a_component_that_cannot_read_what_the_serving_one_made_is_refused_and_loses_no_session() {
    let dir = tempfile::tempdir().unwrap();
    let (host, served) = host_with_swappable_component(dir.path(), HostOptions::default());
    register(&host, EMAIL, PASSWORD).await;
    let token = login(&host, EMAIL, PASSWORD).await;
    // Each is sound alone (it passes the gate as the first component of a host, below), but
    // would log out every session or lock out every account made before it.
    for (fixture, why) in [
        ("fixtures/forgets-tokens.wasm", "checking a token the current component issued"),
        ("fixtures/forgets-hashes.wasm", "a hash the current component made does not match its password"),
    ] {
        let candidate = built_component(fixture);
        install(&candidate, &served);
        let sha = sha256(&candidate);
        let health = wait_for(&host, fixture, |h| h["last_reload"]["sha256"] == sha.as_str()).await;
        let outcome = (&health["last_reload"]["result"], &health["last_reload"]["step"]);
        assert_eq!(outcome, (&"rejected".into(), &"self-test".into()), "{fixture}: {health}");
        host.wait_for_log(why);
        let me = client().get(host.url("/users/me/")).bearer_auth(&token).send().await.unwrap();
        assert_eq!(me.status(), 200, "{fixture}: the session outlives the refusal");
        login(&host, EMAIL, PASSWORD).await;

        let first = TestHost::spawn_with(HostOptions { component: Some(candidate), ..Default::default() });
        register(&first, EMAIL, PASSWORD).await;
        login(&first, EMAIL, PASSWORD).await;
    }
}

#[test]
fn a_host_refuses_to_start_on_a_bad_component() {
    for (fixture, step, why) in [
        ("fixtures/not-a-component.wasm", "compile", ""),
        ("fixtures/wit-next.wasm", "version", "loom:auth@0.3.0"),
        // Checks signatures but nothing else: each of these would be a way in.
        ("fixtures/lax.wasm", "self-test", "an expired token is accepted"),
        ("fixtures/forged.wasm", "self-test", "a token with a forged signature is accepted"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut command = std::process::Command::new(binary("host-server"));
        command.args(["--bind", "127.0.0.1:0", "--data-dir"]).arg(dir.path());
        command.arg("--component").arg(built_component(fixture));
        command.arg("--trusted-signers").arg(loom_e2e::dev_signers());
        let outcome = loom_e2e::run_within(command, Duration::from_secs(60));
        assert_eq!(outcome.code, Some(1), "{fixture}: {outcome:?}");
        assert!(outcome.stderr.contains(&format!("refused at the {step} step")), "{fixture}: {}", outcome.stderr);
        assert!(outcome.stderr.contains(why), "{fixture}: {}", outcome.stderr);
    }
}

#[tokio::test]
async fn after_a_swap_to_a_dearer_component_login_time_does_not_tell_whether_an_account_exists() {
    let dir = tempfile::tempdir().unwrap();
    let unthrottled = HostOptions { args: vec!["--login-max-failures".into(), "1000".into()], ..Default::default() };
    let (host, served) = host_with_swappable_component(dir.path(), unthrottled);
    register(&host, EMAIL, PASSWORD).await;
    // The account keeps the cheaper hash it was made with until it logs in again.
    let hardened = built_component("auth-guest-hardened.wasm");
    install(&hardened, &served);
    let sha = sha256(&hardened);
    wait_for(&host, "the swap", |h| h["component"]["sha256"] == sha.as_str()).await;
    let attempt = async |email: &str| {
        let started = Instant::now();
        let form = [("username", email), ("password", "not the password")];
        let response = client().post(host.url("/token")).form(&form).send().await.unwrap();
        assert_eq!(response.status(), 401);
        started.elapsed()
    };
    attempt("nobody@example.com").await; // the first check after a swap measures the new component
    let (mut known, mut unknown) = (Duration::MAX, Duration::MAX);
    for _ in 0..7 {
        known = known.min(attempt(EMAIL).await);
        unknown = unknown.min(attempt("nobody@example.com").await);
    }
    // Unpadded, an unknown account took ~1.7 times as long as an existing one (its decoy is dearer).
    let ratio = unknown.as_secs_f64() / known.as_secs_f64();
    assert!((0.85..1.18).contains(&ratio), "unknown/known login time ratio {ratio:.2} ({unknown:?} / {known:?})");
}

#[tokio::test]
async fn after_a_swap_back_to_a_cheaper_component_login_time_does_not_tell_either() {
    let (dir, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let served = dir.path().join("auth.wasm");
    install(&loom_e2e::component(), &served);
    let unthrottled = || HostOptions {
        component: Some(served.clone()),
        args: vec!["--login-max-failures".into(), "1000".into()],
        ..Default::default()
    };
    // On a data directory of the test's own, which outlives the host: it is restarted below.
    let host = TestHost::spawn_in(data.path(), unthrottled());
    // Ada registers while the dearer component serves, then the host goes back to the cheaper one.
    let hardened = built_component("auth-guest-hardened.wasm");
    install(&hardened, &served);
    let sha = sha256(&hardened);
    wait_for(&host, "the swap", |h| h["component"]["sha256"] == sha.as_str()).await;
    register(&host, EMAIL, PASSWORD).await;
    install(&loom_e2e::component(), &served);
    let sha = sha256(&loom_e2e::component());
    wait_for(&host, "the swap back", |h| h["component"]["sha256"] == sha.as_str()).await;
    let attempt = async |host: &TestHost, email: &str| {
        let started = Instant::now();
        let form = [("username", email), ("password", "not the password")];
        let response = client().post(host.url("/token")).form(&form).send().await.unwrap();
        assert_eq!(response.status(), 401);
        started.elapsed()
    };
    attempt(&host, "nobody@example.com").await; // the first check after a swap measures the component
    // Ada's dearer hash, once checked (here, or by the survey the swap starts), raises the floor
    // for every login. Until it is timed, its floor is an estimate from the decoy's cost, and her
    // first failure answers in her hash's own time (CI saw it stand 1.25 times below the floor).
    attempt(&host, EMAIL).await;
    let (mut known, mut unknown) = (Duration::MAX, Duration::MAX);
    for _ in 0..7 {
        known = known.min(attempt(&host, EMAIL).await);
        unknown = unknown.min(attempt(&host, "nobody@example.com").await);
    }
    let ratio = unknown.as_secs_f64() / known.as_secs_f64();
    assert!((0.85..1.18).contains(&ratio), "unknown/known login time ratio {ratio:.2} ({unknown:?} / {known:?})");
    // A host that starts on such a database surveys the stored hashes: the floor covers Ada's
    // from the first login on, before her account is ever checked.
    let options = HostOptions {
        database: Some(host.database()),
        log_filter: Some("info,host_server::accounts::credentials=debug".into()),
        ..unthrottled()
    };
    drop(host);
    let restarted = TestHost::spawn_in(data.path(), options);
    restarted.wait_for_log("surveyed the stored password hashes");
    // It noted Ada's hash: 32768 KiB times 3 passes.
    assert!(restarted.logs().contains("dearest=98304"), "{}", restarted.logs());
    // The survey timed Ada's hash on this host: its fastest of three checks.
    let surveyed = surveyed_time(&restarted.logs(), "argon2id m=32768,t=3,p=1");
    let mut unknown_after = Duration::MAX;
    for _ in 0..5 {
        unknown_after = unknown_after.min(attempt(&restarted, "nobody@example.com").await);
    }
    // Padded to 1.5 times that (measured: 1.54 to 1.64 times). Without the survey it is padded
    // to the cheaper component's floor only, well under Ada's check.
    // Compared with the host's own measurement rather than with Ada's logins timed here: a
    // burst of load during those (other suites share the machine) slowed them past the margin.
    assert!(
        unknown_after >= surveyed,
        "after a restart, an unknown account's login ({unknown_after:?}) is quicker than the surveyed check of \
         Ada's hash ({surveyed:?})"
    );
}

/// The fastest surveyed check of stored hashes of `class`, from the host's debug log line
/// `timed={"argon2id m=32768,t=3,p=1": 91.2ms}`.
fn surveyed_time(logs: &str, class: &str) -> Duration {
    let line = logs.lines().find(|line| line.contains("surveyed the stored password hashes")).expect("a survey line");
    let needle = format!("\"{class}\": ");
    let start = line.find(&needle).unwrap_or_else(|| panic!("no time for {class} in {line}")) + needle.len();
    let value: String = line[start..].chars().take_while(|c| *c != ',' && *c != '}').collect();
    let (number, unit) = value.split_at(value.find(|c: char| c.is_alphabetic() || c == 'µ').expect("a unit"));
    let number: f64 = number.parse().unwrap_or_else(|_| panic!("a duration: {value}"));
    match unit {
        "s" => Duration::from_secs_f64(number),
        "ms" => Duration::from_secs_f64(number / 1e3),
        "µs" => Duration::from_secs_f64(number / 1e6),
        _ => panic!("a duration: {value}"),
    }
}
