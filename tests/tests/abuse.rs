//! Standing up to abuse: throttled logins and registrations (counted in the
//! database, decided before any hashing), a bounded hashing queue, and
//! connections that must send their request head in time. Runs on SQLite, and on
//! PostgreSQL with `LOOM_TEST_BACKEND=postgres`.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use loom_e2e::{HostOptions, TestHost, client, login, register};
use reqwest::StatusCode;
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";

fn host(args: &[&str]) -> TestHost {
    TestHost::spawn_with(HostOptions { args: args.iter().map(|a| (*a).to_owned()).collect(), ..Default::default() })
}

/// `POST /token` from `forwarded` (an `X-Forwarded-For` value, when given): status, body, Retry-After, time taken.
async fn attempt(
    host: &TestHost,
    email: &str,
    password: &str,
    forwarded: Option<&str>,
) -> (StatusCode, Value, Option<u64>, Duration) {
    let mut request = client().post(host.url("/token")).form(&[("username", email), ("password", password)]);
    if let Some(forwarded) = forwarded {
        request = request.header("x-forwarded-for", forwarded);
    }
    let started = Instant::now();
    let response = request.send().await.unwrap();
    let took = started.elapsed();
    let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().parse().unwrap());
    (response.status(), response.json().await.unwrap(), retry_after, took)
}

fn assert_throttled(outcome: &(StatusCode, Value, Option<u64>, Duration), window: u64) {
    let (status, body, retry_after, _) = outcome;
    assert_eq!(*status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let retry_after = retry_after.expect("a Retry-After header");
    assert!((1..=window).contains(&retry_after), "Retry-After {retry_after}");
    assert_eq!(body["detail"], format!("Too many failed logins; try again in {retry_after} seconds"));
    assert_eq!(body["error"], "temporarily_unavailable");
}

#[tokio::test]
async fn an_account_is_throttled_after_its_failures_until_the_window_passes() {
    // Long enough that four attempts fit in it on a loaded machine, short enough to wait out.
    let window = 10;
    let host = host(&["--login-max-failures", "3", "--login-window", &window.to_string()]);
    register(&host, "ada@example.com", PASSWORD).await;
    let mut wrong_time = Duration::ZERO;
    for _ in 0..3 {
        let (status, _, _, took) = attempt(&host, "ada@example.com", "wrong password", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        wrong_time = wrong_time.max(took);
    }
    // Now even the right password is refused, before any hashing: far faster than a check.
    let throttled = attempt(&host, "ada@example.com", PASSWORD, None).await;
    assert_throttled(&throttled, window);
    assert!(throttled.3 * 3 < wrong_time, "throttled in {:?}, a wrong password took {wrong_time:?}", throttled.3);
    // An address with no account is throttled exactly alike (no enumeration through 429).
    for _ in 0..3 {
        assert_eq!(attempt(&host, "nobody@example.com", "wrong password", None).await.0, StatusCode::UNAUTHORIZED);
    }
    assert_throttled(&attempt(&host, "nobody@example.com", PASSWORD, None).await, window);

    // The lockout ends when the window allows again (waiting out the time is the behaviour under test).
    tokio::time::sleep(Duration::from_secs(throttled.2.unwrap())).await;
    login(&host, "ada@example.com", PASSWORD).await;
    // A success cleared the account's failures: three more are allowed.
    for _ in 0..3 {
        assert_eq!(attempt(&host, "ada@example.com", "wrong password", None).await.0, StatusCode::UNAUTHORIZED);
    }
    assert_throttled(&attempt(&host, "ada@example.com", PASSWORD, None).await, window);
}

/// The throttle's answer for a name never tells which account the name belongs to: after an
/// email's failures, its account's username answers like any unknown name (a padded `401`),
/// yet the account's guesses under all its names together stay within one allowance.
#[tokio::test]
async fn a_name_is_throttled_by_its_own_count_and_never_links_a_username_to_an_email() {
    let host = host(&["--login-max-failures", "3"]);
    let body = json!({"email": "ada@example.com", "username": "ada_l", "password": PASSWORD});
    let response = client().post(host.url("/users/")).json(&body).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    for _ in 0..3 {
        assert_eq!(attempt(&host, "ada@example.com", "wrong password", None).await.0, StatusCode::UNAUTHORIZED);
    }
    assert_throttled(&attempt(&host, "ada@example.com", "wrong password", None).await, 900);
    // Her username, and a name nobody has, answer alike.
    for name in ["ada_l", "nobody_here"] {
        let (status, body, _, _) = attempt(&host, name, "wrong password", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}: {body}");
        assert_eq!(body["detail"], "Incorrect username or password", "{name}");
    }
    // Her account's allowance is spent under all its names: the right password through the
    // username is not checked either (answered as a failure, like any name's).
    assert_eq!(attempt(&host, "ada_l", PASSWORD, None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(attempt(&host, "nobody_here", PASSWORD, None).await.0, StatusCode::UNAUTHORIZED);
    // Each name reaches its own 429 by its own count alone: two failures each so far.
    for name in ["ada_l", "nobody_here"] {
        assert_eq!(attempt(&host, name, "wrong password", None).await.0, StatusCode::UNAUTHORIZED, "{name}");
        assert_throttled(&attempt(&host, name, "wrong password", None).await, 900);
    }
}

#[tokio::test]
async fn parallel_guesses_do_not_slip_past_the_throttle() {
    // Twenty wrong passwords at once against an allowance of three: exactly three are checked.
    let host = host(&["--login-max-failures", "3", "--login-max-failures-per-address", "1000"]);
    register(&host, "ada@example.com", PASSWORD).await;
    let statuses = loom_e2e::parallel_wrong_guesses(&[&host], "ada@example.com", 20).await;
    let checked = statuses.iter().filter(|s| **s == StatusCode::UNAUTHORIZED).count();
    assert_eq!(checked, 3, "{statuses:?}");
    assert!(
        statuses.iter().all(|s| [StatusCode::UNAUTHORIZED, StatusCode::TOO_MANY_REQUESTS].contains(s)),
        "{statuses:?}"
    );
    // And the right password is refused now too: the allowance is spent.
    assert_eq!(attempt(&host, "ada@example.com", PASSWORD, None).await.0, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_burst_of_right_logins_to_one_account_is_told_to_retry_in_a_second_and_locks_nothing() {
    // A fleet of CI jobs sharing an account, all logging in at the same instant.
    let host = host(&["--login-max-failures", "5"]);
    register(&host, "ci@example.com", PASSWORD).await;
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..40 {
        let url = host.url("/token");
        burst.spawn(async move {
            let response = client().post(url).form(&[("username", "ci@example.com"), ("password", PASSWORD)]);
            let response = response.send().await.unwrap();
            let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
            (response.status(), retry_after, response.json::<Value>().await.unwrap())
        });
    }
    let (mut succeeded, mut crowded) = (0, 0);
    while let Some(outcome) = burst.join_next().await {
        let (status, retry_after, body) = outcome.unwrap();
        match status {
            StatusCode::OK => succeeded += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                crowded += 1;
                assert_eq!(body["detail"], "Too many logins to this account at once; try again in 1 second");
                assert_eq!(retry_after.as_deref(), Some("1"));
            }
            other => panic!("{other}: {body}"),
        }
    }
    assert!(succeeded >= 1 && crowded >= 1, "{succeeded} succeeded, {crowded} were crowded out");
    // No login failed, so nothing is locked: the next one succeeds at once.
    let (status, body, _, _) = attempt(&host, "ci@example.com", PASSWORD, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn an_address_is_throttled_across_accounts_and_only_trusted_proxies_name_it() {
    let host = host(&["--login-max-failures-per-address", "4", "--trusted-proxy", "127.0.0.1"]);
    register(&host, "ada@example.com", PASSWORD).await;
    for n in 0..4 {
        let email = format!("guess{n}@example.com");
        assert_eq!(attempt(&host, &email, "wrong password", Some("198.51.100.7")).await.0, StatusCode::UNAUTHORIZED);
    }
    assert_throttled(&attempt(&host, "ada@example.com", PASSWORD, Some("198.51.100.7")).await, 900);
    // Another client behind the same trusted proxy is not affected.
    assert_eq!(attempt(&host, "ada@example.com", PASSWORD, Some("198.51.100.8")).await.0, StatusCode::OK);
    // A client cannot choose its address by prepending to the header.
    let spoofed = attempt(&host, "ada@example.com", PASSWORD, Some("203.0.113.1, 198.51.100.7")).await;
    assert_eq!(spoofed.0, StatusCode::TOO_MANY_REQUESTS);

    // Without a trusted proxy the header is ignored: the peer (127.0.0.1) is the client.
    let direct = host_without_proxies().await;
    for n in 0..4 {
        let forwarded = format!("198.51.100.{n}");
        let email = format!("guess{n}@example.com");
        assert_eq!(attempt(&direct, &email, "wrong password", Some(&forwarded)).await.0, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        attempt(&direct, "x@example.com", PASSWORD, Some("198.51.100.99")).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
}

async fn host_without_proxies() -> TestHost {
    host(&["--login-max-failures-per-address", "4"])
}

#[tokio::test]
async fn registrations_are_throttled_per_address() {
    let host = host(&["--signups-per-address", "2"]);
    // A registration hashes its password: what a refusal before any hashing must take far less than.
    let mut hashing = Duration::MAX;
    for email in ["one@example.com", "two@example.com"] {
        let started = Instant::now();
        register(&host, email, PASSWORD).await;
        hashing = hashing.min(started.elapsed());
    }
    let started = Instant::now();
    let response = client()
        .post(host.url("/users/"))
        .json(&json!({ "email": "three@example.com", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((3590..=3600).contains(&retry_after), "{retry_after}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["detail"], format!("Too many registrations from this address; try again in {retry_after} seconds"));
    let refused_in = started.elapsed();
    assert!(refused_in < hashing / 2, "refused in {refused_in:?}; a registration with its hash took {hashing:?}");
}

#[tokio::test]
async fn asking_whether_an_address_is_registered_counts_against_the_allowance() {
    let host = host(&["--signups-per-address", "3"]);
    register(&host, "dave@example.com", PASSWORD).await;
    let again =
        || client().post(host.url("/users/")).json(&json!({ "email": "dave@example.com", "password": PASSWORD }));
    for _ in 0..2 {
        assert_eq!(again().send().await.unwrap().status(), StatusCode::BAD_REQUEST, "already registered");
    }
    // The allowance is spent by those questions: the answer stops telling.
    for _ in 0..5 {
        assert_eq!(again().send().await.unwrap().status(), StatusCode::TOO_MANY_REQUESTS);
    }
}

#[tokio::test]
async fn a_full_hashing_queue_answers_503_at_once_and_cheap_requests_go_on() {
    let host = host(&["--max-hash-queue", "1", "--signups-per-address", "1000"]);
    register(&host, "ada@example.com", PASSWORD).await;
    let token = login(&host, "ada@example.com", PASSWORD).await;
    // One hash's time, unhurried: what a cheap request must take far less than, even now.
    let mut hashing = Duration::MAX;
    for n in 0..2 {
        let started = Instant::now();
        register(&host, &format!("warm{n}@example.com"), PASSWORD).await;
        hashing = hashing.min(started.elapsed());
    }
    let saturated = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let signups: Vec<_> = (0..16)
        .map(|n| {
            let request = client()
                .post(host.url("/users/"))
                .json(&json!({ "email": format!("u{n}@example.com"), "password": PASSWORD }));
            let saturated = std::sync::Arc::clone(&saturated);
            async move {
                let started = Instant::now();
                let response = request.send().await.unwrap();
                if response.status() == StatusCode::SERVICE_UNAVAILABLE {
                    saturated.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
                (response.status(), retry_after, started.elapsed(), response.json::<Value>().await.unwrap())
            }
        })
        .map(tokio::spawn)
        .collect();
    // Once the queue is full (a refusal came back), cheap requests are still answered at once.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !saturated.load(std::sync::atomic::Ordering::Relaxed) {
        assert!(Instant::now() < deadline, "the hashing queue never filled");
        tokio::time::sleep(Duration::from_millis(1)).await; // polling the signups' flag
    }
    let (mut healthz, mut me) = (Duration::MAX, Duration::MAX);
    for _ in 0..3 {
        let started = Instant::now();
        assert_eq!(client().get(host.url("/healthz")).send().await.unwrap().status(), StatusCode::OK);
        healthz = healthz.min(started.elapsed());
        let started = Instant::now();
        let response = client().get(host.url("/users/me/")).bearer_auth(&token).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        me = me.min(started.elapsed());
    }
    // Under one hash (a busy CI machine shares its two cores with other tests; answered
    // behind the queue, each would take several).
    assert!(healthz < hashing && me < hashing, "/healthz {healthz:?}, /users/me/ {me:?}, one hash {hashing:?}");
    let mut outcomes = Vec::new();
    for signup in signups {
        outcomes.push(signup.await.unwrap());
    }
    let refused: Vec<_> = outcomes.iter().filter(|o| o.0 == StatusCode::SERVICE_UNAVAILABLE).collect();
    assert!(!refused.is_empty(), "16 hashes at once with a queue of 1: some must be refused: {outcomes:?}");
    assert!(outcomes.iter().any(|o| o.0 == StatusCode::CREATED));
    for (_, retry_after, took, body) in refused {
        assert_eq!(retry_after.as_deref(), Some("1"));
        assert_eq!(body["detail"], "The server is busy; try again in a moment");
        assert!(*took < Duration::from_millis(300), "a refusal took {took:?}");
    }
}

#[tokio::test]
async fn half_sent_request_heads_are_disconnected_while_others_are_served() {
    let host = host(&["--header-timeout", "1"]);
    let address = host.base_url.trim_start_matches("http://").to_owned();
    let mut stalled: Vec<std::net::TcpStream> = (0..50)
        .map(|_| {
            let mut stream = std::net::TcpStream::connect(&address).unwrap();
            stream.write_all(b"POST /token HTTP/1.1\r\nHost: loom\r\n").unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            stream
        })
        .collect();
    let started = Instant::now();
    // Requests keep being served meanwhile.
    register(&host, "ada@example.com", PASSWORD).await;
    for stream in &mut stalled {
        let mut rest = Vec::new();
        // Closed by the host: the read ends (with or without a final response) before its own 10 s timeout.
        let _ = stream.read_to_end(&mut rest);
    }
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(5), "closed after {took:?}");
    login(&host, "ada@example.com", PASSWORD).await;
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_header_timeout() {
    let host = host(&["--header-timeout", "1"]);
    let address = host.base_url.trim_start_matches("http://").to_owned();
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: loom\r\n\r\n").unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut first = [0u8; 12];
    stream.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    // The response is read; the connection now idles with no next request.
    let started = Instant::now();
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    let took = started.elapsed();
    // Kept alive (a server that closes after each answer would end it at once), then closed.
    assert!(!String::from_utf8_lossy(&rest).to_ascii_lowercase().contains("connection: close"), "not kept alive");
    assert!(took >= Duration::from_millis(900), "the connection was not kept alive: closed after {took:?}");
    assert!(took < Duration::from_secs(5), "an idle connection stayed open {took:?}");
}

#[tokio::test]
async fn a_request_past_the_request_timeout_gets_503() {
    // The fixture sleeps in a host call on this password; the hashing deadline is set far beyond the request's.
    let options = HostOptions {
        component: Some(loom_e2e::built_component("fixtures/evil.wasm")),
        args: ["--request-timeout", "1", "--hash-deadline-ms", "60000"].map(String::from).to_vec(),
        ..Default::default()
    };
    let host = TestHost::spawn_with(options);
    let started = Instant::now();
    let response = client()
        .post(host.url("/users/"))
        .json(&json!({ "email": "slow@example.com", "password": "sleep-now" }))
        .send()
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.json::<Value>().await.unwrap()["detail"], "The request took too long");
    assert!(took >= Duration::from_secs(1) && took < Duration::from_secs(4), "answered after {took:?}");
    assert_eq!(client().get(host.url("/healthz")).send().await.unwrap().status(), StatusCode::OK);
}
