//! What operators see: Prometheus metrics on their own listener, and JSON log lines whose
//! audit events tell a flow in order without a secret in them.

use loom_e2e::{HostOptions, TestHost, client, component, login, register, sha256};
use reqwest::StatusCode;
use serde_json::Value;

const EMAIL: &str = "ada@example.com";
const PASSWORD: &str = "correct horse battery staple";

fn observed_host() -> TestHost {
    TestHost::spawn_with(HostOptions {
        args: ["--metrics-bind", "127.0.0.1:0", "--log-format", "json", "--login-max-failures", "2"]
            .map(String::from)
            .to_vec(),
        ..Default::default()
    })
}

async fn attempt_login(host: &TestHost, password: &str) -> StatusCode {
    let form = [("username", EMAIL), ("password", password)];
    client().post(host.url("/token")).form(&form).send().await.unwrap().status()
}

/// A register / fail / log in / me / log out / fail twice / throttled flow.
async fn run_flow(host: &TestHost) -> String {
    register(host, EMAIL, PASSWORD).await;
    assert_eq!(attempt_login(host, "wrong password").await, StatusCode::UNAUTHORIZED);
    let token = login(host, EMAIL, PASSWORD).await;
    let me = client().get(host.url("/users/me/")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    let logout = client().post(host.url("/logout")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    for _ in 0..2 {
        assert_eq!(attempt_login(host, "wrong password").await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(attempt_login(host, PASSWORD).await, StatusCode::TOO_MANY_REQUESTS);
    token
}

/// One sample's value by name and labels.
fn sample(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape.samples.iter().find_map(|s| {
        let matches = s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v));
        match (&s.value, matches) {
            (prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v), true) => Some(*v),
            (prometheus_parse::Value::Untyped(v), true) => Some(*v),
            _ => None,
        }
    })
}

#[tokio::test]
async fn metrics_count_requests_logins_and_name_the_serving_component() {
    let host = observed_host();
    run_flow(&host).await;
    // Paths that hold values (an id, something unknown) are counted by their route's pattern.
    for path in ["/sessions/8741236", "/no/such/path-5519"] {
        client().delete(host.url(path)).send().await.unwrap();
    }
    let response = client().get(host.metrics_url()).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = response.text().await.unwrap();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("Prometheus text");

    let requests = |route: &str, method: &str, status: &str| {
        sample(&scrape, "loom_http_requests_total", &[("route", route), ("method", method), ("status", status)])
    };
    assert_eq!(requests("/users/", "POST", "201"), Some(1.0), "{text}");
    assert_eq!(requests("/token", "POST", "200"), Some(1.0));
    assert_eq!(requests("/token", "POST", "401"), Some(3.0));
    assert_eq!(requests("/token", "POST", "429"), Some(1.0));
    assert_eq!(requests("/users/me/", "GET", "200"), Some(1.0));
    assert_eq!(requests("/logout", "POST", "204"), Some(1.0));
    // (The parser misreads a label value holding braces, so this one is read from the text.)
    let by_pattern = r#"loom_http_requests_total{route="/sessions/{id}",method="DELETE",status="401"} 1"#;
    assert!(text.lines().any(|line| line == by_pattern), "{text}");
    assert_eq!(requests("unmatched", "DELETE", "404"), Some(1.0), "{text}");
    assert!(!text.contains("8741236") && !text.contains("5519"), "a raw path in the metrics:\n{text}");
    for (outcome, count) in [("ok", 1.0), ("failed", 3.0), ("throttled", 1.0)] {
        assert_eq!(sample(&scrape, "loom_logins_total", &[("outcome", outcome)]), Some(count), "{outcome}");
    }
    let latency = scrape.samples.iter().find(|s| s.metric == "loom_http_request_duration_seconds").expect("latency");
    let prometheus_parse::Value::Histogram(buckets) = &latency.value else { panic!("a histogram: {latency:?}") };
    assert!(buckets.iter().any(|b| b.count > 0.0), "{buckets:?}");
    let digest = sha256(&component());
    assert_eq!(sample(&scrape, "loom_component_info", &[("sha256", &digest), ("wit_version", "0.2.1")]), Some(1.0));
    assert_eq!(sample(&scrape, "loom_hash_queue_depth", &[]), Some(0.0));
    assert_eq!(sample(&scrape, "loom_component_reloads_total", &[("result", "published")]), Some(1.0));

    // The API port does not serve them.
    assert_eq!(client().get(host.url("/metrics")).send().await.unwrap().status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn json_logs_parse_and_tell_the_flow_in_audit_events_without_secrets() {
    let host = observed_host();
    let token = run_flow(&host).await;
    // The log arrives through a pipe: wait (bounded) for the flow's last event to be read.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !host.logs().contains(r#""event":"login.throttled""#) {
        assert!(std::time::Instant::now() < deadline, "no login.throttled event:\n{}", host.logs());
        tokio::time::sleep(std::time::Duration::from_millis(10)).await; // polling the host's log
    }
    let logs = host.logs();
    let lines: Vec<Value> = logs
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}")))
        .collect();
    let audit: Vec<&Value> = lines.iter().filter(|l| l["target"] == "audit").collect();
    let events: Vec<&str> = audit.iter().map(|l| l["event"].as_str().expect("an event name")).collect();
    assert_eq!(
        events,
        [
            "component.published",
            "user.created",
            "login.failed",
            "session.created",
            "login.succeeded",
            "session.revoked",
            "token.revoked",
            "login.failed",
            "login.failed",
            "login.throttled"
        ]
    );
    let user_id = &audit[1]["user_id"];
    assert!(user_id.is_i64(), "{}", audit[1]);
    for event in &audit[1..] {
        assert_eq!(event["client"], "127.0.0.1", "{event}");
        if event["event"] != "login.throttled" {
            assert_eq!(&event["user_id"], user_id, "{event}");
        }
    }
    assert_eq!(audit[0]["sha256"], sha256(&component()));
    for secret in [PASSWORD, token.as_str(), "$argon2id$"] {
        assert!(!logs.contains(secret), "the log holds a secret: {secret}");
    }
}

#[tokio::test]
async fn a_trapping_candidate_shows_as_a_rejected_reload_and_guest_traps() {
    let dir = tempfile::tempdir().unwrap();
    let served = dir.path().join("auth.wasm");
    loom_e2e::install(&component(), &served);
    let mut options = HostOptions { component: Some(served.clone()), ..Default::default() };
    options.args = ["--metrics-bind", "127.0.0.1:0", "--log-format", "json"].map(String::from).to_vec();
    let host = TestHost::spawn_with(options);

    loom_e2e::install(&loom_e2e::built_component("fixtures/trap.wasm"), &served);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let scrape = loop {
        let text = client().get(host.metrics_url()).send().await.unwrap().text().await.unwrap();
        let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
        if sample(&scrape, "loom_component_reloads_total", &[("result", "rejected")]).is_some() {
            break scrape;
        }
        assert!(std::time::Instant::now() < deadline, "the trapping candidate was never refused:\n{}", host.logs());
        tokio::time::sleep(std::time::Duration::from_millis(50)).await; // polling the host's own report
    };
    assert_eq!(sample(&scrape, "loom_component_reloads_total", &[("result", "rejected")]), Some(1.0));
    let traps: f64 = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "loom_guest_traps_total")
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v) => v,
            _ => 0.0,
        })
        .sum();
    assert!(traps >= 1.0, "no guest trap counted");
    let digest = sha256(&component());
    assert_eq!(sample(&scrape, "loom_component_info", &[("sha256", &digest)]), Some(1.0), "still serving");
    let rejected = |logs: &str| {
        logs.lines().any(|line| {
            let line: Value = serde_json::from_str(line).unwrap();
            line["event"] == "component.rejected" && line["step"] == "self-test"
        })
    };
    while !rejected(&host.logs()) {
        assert!(std::time::Instant::now() < deadline, "no component.rejected event:\n{}", host.logs());
        tokio::time::sleep(std::time::Duration::from_millis(10)).await; // polling the host's log
    }
}

/// The audit events a flow does not reach: a refused registration, and a key rotation made by
/// an admin command while the host serves (which each host logs when it sees it).
#[tokio::test]
async fn a_throttled_signup_and_a_key_change_are_audit_events() {
    let host = TestHost::spawn_with(HostOptions {
        args: ["--log-format", "json", "--signups-per-address", "1"].map(String::from).to_vec(),
        ..Default::default()
    });
    register(&host, EMAIL, PASSWORD).await;
    let refused = client()
        .post(host.url("/users/"))
        .json(&serde_json::json!({ "email": "bob@example.com", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let mut rotate = host.admin_command();
    rotate.args(["keys", "rotate"]);
    let rotated = loom_e2e::run_within(rotate, std::time::Duration::from_secs(60));
    assert_eq!(rotated.code, Some(0), "{rotated:?}");
    // The host re-reads the keys every 5 seconds.
    host.wait_for_log(r#""event":"keys.changed""#);
    let logs = host.logs();
    let audit: Vec<Value> = logs
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["target"] == "audit")
        .collect();
    let throttled = audit.iter().find(|e| e["event"] == "signup.throttled").expect("a signup.throttled event");
    assert_eq!(throttled["client"], "127.0.0.1", "{throttled}");
    let changed = audit.iter().find(|e| e["event"] == "keys.changed").unwrap();
    let kid = rotated.stdout.split_whitespace().find(|word| word.starts_with("20")).expect("the new kid in the output");
    assert_eq!(changed["signing"], kid.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '-'), "{changed}");
    assert!(changed["verifying"].as_u64().is_some_and(|n| n >= 1), "the previous key still verifies: {changed}");
    assert_eq!(changed["trigger"], "poll", "{changed}");
}
