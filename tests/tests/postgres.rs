//! PostgreSQL: several hosts on one database, outages, and a host that starts
//! before its database. `just test` provides the server (`with-postgres`);
//! the outage tests start throwaway servers of their own to stop and start.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use loom_e2e::{
    HostOptions, PostgresDatabase, TestDatabase, TestHost, client, login, pg, postgres_server, query_one, register,
};
use reqwest::StatusCode;
use serde_json::Value;

const PASSWORD: &str = "correct horse battery staple";
/// A database password to look for where none may be shown.
const MARKER: &str = "Xq7pMarkerW2";

async fn me(host: &TestHost, token: &str) -> reqwest::Response {
    client().get(host.url("/users/me/")).bearer_auth(token).send().await.unwrap()
}

/// Polls `path` on `host` until it answers `status` (at most 60 s): the host recovering by itself.
async fn until_status(host: &TestHost, path: &str, status: StatusCode) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if client().get(host.url(path)).send().await.is_ok_and(|r| r.status() == status) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{path} never answered {status}:\n{}", host.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn two_hosts_on_one_database_share_accounts_tokens_races_and_revocations() {
    let Some(server) = postgres_server() else { return };
    let database = TestDatabase::postgres(PostgresDatabase::create(&server));
    // One data directory: the hosts share the signing secret, as they would share a --secret-file.
    let dir = tempfile::tempdir().unwrap();
    // Throttle counters are shared too: lift the registration allowance above this test's 21.
    let on = |database: &TestDatabase| HostOptions {
        database: Some(database.clone()),
        args: vec!["--signups-per-address".into(), "100".into()],
        ..Default::default()
    };
    // Started together: both migrate the empty database (sqlx's migration lock lets one do it).
    let (a, b) = (TestHost::start_in(dir.path(), on(&database)), TestHost::start_in(dir.path(), on(&database)));
    let (a, b) = tokio::task::spawn_blocking(move || (a.wait(), b.wait())).await.unwrap();

    let account = register(&a, "ada@example.com", PASSWORD).await;
    let token = login(&b, "ada@example.com", PASSWORD).await;
    let response = me(&a, &token).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap(), account);

    // Twenty registrations of one address (in two spellings) at once, split across the hosts.
    let attempts: Vec<_> = (0..20)
        .map(|n| {
            let (host, email) = if n % 2 == 0 { (&a, "race@example.com") } else { (&b, "RACE@example.com") };
            let request =
                client().post(host.url("/users/")).json(&serde_json::json!({ "email": email, "password": PASSWORD }));
            tokio::spawn(async move { request.send().await.unwrap().status() })
        })
        .collect();
    let mut statuses = Vec::new();
    for attempt in attempts {
        statuses.push(attempt.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::CREATED).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == StatusCode::CREATED || *s == StatusCode::BAD_REQUEST), "{statuses:?}");

    let logout = client().post(b.url("/logout")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    assert_eq!(me(&a, &token).await.status(), StatusCode::UNAUTHORIZED, "revoked on B, refused on A");
}

#[tokio::test]
async fn parallel_guesses_split_across_two_hosts_do_not_slip_past_the_throttle() {
    let Some(server) = postgres_server() else { return };
    let database = TestDatabase::postgres(PostgresDatabase::create(&server));
    let dir = tempfile::tempdir().unwrap();
    let on = |database: &TestDatabase| HostOptions {
        database: Some(database.clone()),
        args: ["--login-max-failures", "3", "--login-max-failures-per-address", "1000"].map(String::from).to_vec(),
        ..Default::default()
    };
    let (a, b) = (TestHost::start_in(dir.path(), on(&database)), TestHost::start_in(dir.path(), on(&database)));
    let (a, b) = tokio::task::spawn_blocking(move || (a.wait(), b.wait())).await.unwrap();
    register(&a, "ada@example.com", PASSWORD).await;
    // Twenty wrong passwords at once, alternating between the hosts, against an allowance of
    // three: exactly three are checked, whichever host they reached.
    let statuses = loom_e2e::parallel_wrong_guesses(&[&a, &b], "ada@example.com", 20).await;
    let checked = statuses.iter().filter(|s| **s == StatusCode::UNAUTHORIZED).count();
    assert_eq!(checked, 3, "{statuses:?}");
    assert!(
        statuses.iter().all(|s| [StatusCode::UNAUTHORIZED, StatusCode::TOO_MANY_REQUESTS].contains(s)),
        "{statuses:?}"
    );
    for host in [&a, &b] {
        let right = client().post(host.url("/token")).form(&[("username", "ada@example.com"), ("password", PASSWORD)]);
        assert_eq!(
            right.send().await.unwrap().status(),
            StatusCode::TOO_MANY_REQUESTS,
            "the allowance is spent on both"
        );
    }
}

#[tokio::test]
async fn a_connection_the_server_ends_for_idling_is_replaced_not_an_error() {
    let Some(server) = postgres_server() else { return };
    let database = PostgresDatabase::create(&server);
    let url = database.url.clone();
    let host =
        TestHost::spawn_with(HostOptions { database: Some(TestDatabase::postgres(database)), ..Default::default() });
    register(&host, "ada@example.com", PASSWORD).await;
    let token = login(&host, "ada@example.com", PASSWORD).await;
    // Connections made from now on end after 300 ms idle (a FATAL error, 57P05, like a pooler's
    // idle timeout); the standing lookup opens its first one with the next request.
    let name = query_one(&url, "SELECT current_database()::text");
    host.sql(&format!("ALTER DATABASE {name} SET idle_session_timeout = '300ms'"));
    let since = query_one(&url, "SELECT now()::text");
    assert_eq!(me(&host, &token).await.status(), StatusCode::OK);
    // Until every session opened since has been ended by the server.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let opened_since = format!(
        "SELECT count(*)::text FROM pg_stat_activity WHERE datname = current_database() \
         AND backend_start > '{since}' AND pid <> pg_backend_pid()"
    );
    while query_one(&url, &opened_since) != "0" {
        assert!(tokio::time::Instant::now() < deadline, "the idle sessions were never ended");
        tokio::time::sleep(Duration::from_millis(50)).await; // polling the server's view
    }
    for _ in 0..3 {
        assert_eq!(me(&host, &token).await.status(), StatusCode::OK, "{}", host.logs());
    }
}

#[tokio::test]
async fn a_database_outage_gives_503s_and_the_host_recovers_by_itself() {
    let Some(mut server) = pg::own() else { return };
    let database = TestDatabase::postgres(PostgresDatabase::create(&server.url));
    let host = TestHost::spawn_with(HostOptions { database: Some(database), ..Default::default() });
    register(&host, "ada@example.com", PASSWORD).await;
    let token = login(&host, "ada@example.com", PASSWORD).await;
    assert_eq!(me(&host, &token).await.status(), StatusCode::OK);

    // A restart between two requests closes every connection the host holds: the next request
    // finds out and is answered on a fresh one, not with an error.
    server.pause();
    server.resume().unwrap();
    until_status(&host, "/readyz", StatusCode::OK).await;
    for _ in 0..8 {
        assert_eq!(me(&host, &token).await.status(), StatusCode::OK, "after a restart:\n{}", host.logs());
    }

    server.pause();
    let response = me(&host, &token).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.json::<Value>().await.unwrap()["detail"], "The database is unavailable; try again shortly");
    let login_attempt =
        client().post(host.url("/token")).form(&[("username", "ada@example.com"), ("password", PASSWORD)]).send();
    let login_attempt = login_attempt.await.unwrap();
    assert_eq!(login_attempt.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(login_attempt.json::<Value>().await.unwrap()["error"], "temporarily_unavailable");
    // Readiness answers within its documented 2 seconds, naming the database.
    let started = std::time::Instant::now();
    let ready = client().get(host.url("/readyz")).send().await.unwrap();
    let took = started.elapsed();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = ready.json::<Value>().await.unwrap();
    assert!(body["detail"].is_string(), "{body}");
    assert_eq!(body["database"], "unavailable", "{body}");
    assert!(took < Duration::from_millis(2500), "/readyz took {took:?} during the outage");
    assert_eq!(client().get(host.url("/healthz")).send().await.unwrap().status(), StatusCode::OK, "still alive");

    server.resume().unwrap();
    until_status(&host, "/readyz", StatusCode::OK).await;
    assert_eq!(me(&host, &token).await.status(), StatusCode::OK);
    login(&host, "ada@example.com", PASSWORD).await;
}

#[tokio::test]
async fn a_host_started_before_its_database_waits_for_it() {
    let Some(mut server) = pg::own() else { return };
    // The server trusts loopback and ignores the password: the URL carries a marker to look for.
    let mut database = TestDatabase::postgres(PostgresDatabase::create(&server.url));
    database.url = database.url.replacen("postgres://loom@", &format!("postgres://loom:{MARKER}@"), 1);
    assert!(database.url.contains(MARKER), "{}", database.url);
    server.pause();
    let dir = tempfile::tempdir().unwrap();
    let starting = TestHost::start_in(dir.path(), HostOptions { database: Some(database), ..Default::default() });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !starting.logs().contains("the database does not answer; trying again") {
        assert!(tokio::time::Instant::now() < deadline, "no retry in the log:\n{}", starting.logs());
        tokio::time::sleep(Duration::from_millis(20)).await; // polling the host's log
    }
    server.resume().unwrap();
    let host = tokio::task::spawn_blocking(move || starting.wait()).await.unwrap();
    register(&host, "ada@example.com", PASSWORD).await;
    assert!(!host.logs().contains(MARKER), "the database password in the log:\n{}", host.logs());
    // Nor in what an admin command says, when it works and when it fails.
    for (url, args) in [
        (host.database_url.clone(), &["users", "list"][..]),
        (host.database_url.replace("/loom_test_", "/no_such_database_"), &["users", "list"][..]),
        (host.database_url.clone(), &["keys", "list"][..]),
    ] {
        let mut command = std::process::Command::new(loom_e2e::binary("host-server"));
        command.arg("--data-dir").arg(&host.data_dir).arg("--database-url").arg(&url).args(args);
        command.arg("--component").arg(loom_e2e::component()).arg("--trusted-signers").arg(loom_e2e::dev_signers());
        command.env_remove("DATABASE_URL");
        let outcome = loom_e2e::run_within(command, Duration::from_secs(60));
        assert!(!format!("{outcome:?}").contains(MARKER), "{args:?} showed the database password: {outcome:?}");
    }
}

/// A load balancer's view: the hosts to spread requests over, changed while requests run.
type Pool = Arc<RwLock<Vec<String>>>;

/// Sends `GET /users/me/` round-robin over `pool` until `stop`, on a fresh connection each time,
/// moving on to the next host when one refuses the connection (and only then), and counting
/// answers in `answered`. Returns the hosts that answered, in order, and the refusals, or the
/// first request that failed in any other way.
async fn retrying_client(
    pool: Pool,
    token: String,
    answered: Arc<AtomicUsize>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(Vec<String>, usize), String> {
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).timeout(Duration::from_secs(30)).build().unwrap();
    let (mut served, mut refused, mut turn) = (Vec::new(), 0, 0usize);
    while !*stop.borrow() {
        let mut refusals_in_a_row = 0;
        loop {
            let base = {
                let hosts = pool.read().unwrap();
                hosts[turn % hosts.len()].clone()
            };
            turn += 1;
            match http.get(format!("{base}/users/me/")).bearer_auth(&token).send().await {
                Ok(response) if response.status() == StatusCode::OK => break served.push(base),
                Ok(response) => return Err(format!("{base} answered {}", response.status())),
                Err(error) if error.is_connect() && refusals_in_a_row < 100 => {
                    refused += 1;
                    refusals_in_a_row += 1;
                }
                Err(error) => return Err(format!("{base}: {error:?}")),
            }
        }
        answered.fetch_add(1, Ordering::Relaxed);
    }
    Ok((served, refused))
}

/// Waits (at most 60 s) until the clients have had `more` answers beyond what they had.
async fn until_answered(answered: &AtomicUsize, more: usize) {
    let target = answered.load(Ordering::Relaxed) + more;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while answered.load(Ordering::Relaxed) < target {
        assert!(tokio::time::Instant::now() < deadline, "the clients stalled");
        tokio::time::sleep(Duration::from_millis(5)).await; // polling the clients' progress
    }
}

#[tokio::test]
async fn a_rolling_restart_of_one_of_two_hosts_loses_no_request() {
    let Some(server) = postgres_server() else { return };
    let database = TestDatabase::postgres(PostgresDatabase::create(&server));
    let dir = tempfile::tempdir().unwrap();
    let on = || HostOptions { database: Some(database.clone()), ..Default::default() };
    let (mut a, b) = (TestHost::spawn_in(dir.path(), on()), TestHost::spawn_in(dir.path(), on()));
    register(&a, "ada@example.com", PASSWORD).await;
    let token = login(&a, "ada@example.com", PASSWORD).await;

    let pool: Pool = Arc::new(RwLock::new(vec![a.base_url.clone(), b.base_url.clone()]));
    let answered = Arc::new(AtomicUsize::new(0));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let clients: Vec<_> = (0..8)
        .map(|_| tokio::spawn(retrying_client(pool.clone(), token.clone(), answered.clone(), stopped.clone())))
        .collect();
    until_answered(&answered, 200).await;

    // Restart A under load: SIGTERM, then a new A on the same data directory, which the balancer
    // learns about once it listens (on a new port, like a new container's address).
    let old_a = a.base_url.clone();
    let (a, code) = tokio::task::spawn_blocking(move || {
        let code = a.terminate();
        (a, code)
    })
    .await
    .unwrap();
    assert_eq!(code, Some(0), "{}", a.logs());
    let (path, options) = (dir.path().to_owned(), on());
    let new_a = tokio::task::spawn_blocking(move || TestHost::spawn_in(&path, options)).await.unwrap();
    pool.write().unwrap()[0] = new_a.base_url.clone();
    until_answered(&answered, 200).await;
    stop.send(true).unwrap();

    let (mut served, mut refused) = (Vec::new(), 0);
    for client in clients {
        let (hosts, refusals) = client
            .await
            .unwrap()
            .unwrap_or_else(|failure| panic!("a request was lost: {failure}\nthe old A's log:\n{}", a.logs()));
        served.extend(hosts);
        refused += refusals;
    }
    let count = |base: &str| served.iter().filter(|s| *s == base).count();
    let (by_old_a, by_b, by_new_a) = (count(&old_a), count(&b.base_url), count(&new_a.base_url));
    println!("answered by the old A {by_old_a}, B {by_b}, the new A {by_new_a}; connections refused {refused}");
    assert!(by_old_a > 0 && by_b > 0 && by_new_a > 0, "the load did not span the restart");
    assert!(refused > 0, "no client met the stopped host: the test proved nothing");
}

#[tokio::test]
async fn refreshes_across_hosts_rotate_once_and_a_replay_ends_the_session_everywhere() {
    let Some(server) = postgres_server() else { return };
    let database = TestDatabase::postgres(PostgresDatabase::create(&server));
    let dir = tempfile::tempdir().unwrap();
    let on = |grace: &str| HostOptions {
        database: Some(database.clone()),
        args: vec!["--refresh-reuse-grace".into(), grace.into()],
        ..Default::default()
    };
    // A and B give spent tokens the default grace; C and D none, so a replay is one at once.
    let (a, b) = (TestHost::spawn_in(dir.path(), on("10")), TestHost::spawn_in(dir.path(), on("10")));
    let (c, d) = (TestHost::spawn_in(dir.path(), on("0")), TestHost::spawn_in(dir.path(), on("0")));
    register(&a, "ada@example.com", PASSWORD).await;
    let post = |host: &TestHost, form: Vec<(&'static str, String)>| {
        let request = client().post(host.url("/token")).form(&form);
        async move {
            let response = request.send().await.unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        }
    };
    let password = || vec![("username", "ada@example.com".into()), ("password", PASSWORD.into())];
    let refresh = |token: &str| -> Vec<(&'static str, String)> {
        vec![("grant_type", "refresh_token".into()), ("refresh_token", token.to_owned())]
    };
    let (_, login) = post(&a, password()).await;
    let first = login["refresh_token"].as_str().unwrap().to_owned();
    // Twelve refreshes of one token at once, across A and B: one rotation, one successor for all.
    let racers: Vec<_> = (0..12)
        .map(|n| {
            let host = if n % 2 == 0 { &a } else { &b };
            let request = client().post(host.url("/token")).form(&refresh(&first));
            tokio::spawn(async move {
                let response = request.send().await.unwrap();
                assert_eq!(response.status(), StatusCode::OK);
                response.json::<Value>().await.unwrap()["refresh_token"].as_str().unwrap().to_owned()
            })
        })
        .collect();
    let mut successors = std::collections::BTreeSet::new();
    for racer in racers {
        successors.insert(racer.await.unwrap());
    }
    assert_eq!(successors.len(), 1, "every host handed out the one successor");
    let (status, _) = post(&b, refresh(successors.first().unwrap())).await;
    assert_eq!(status, StatusCode::OK, "the chain goes on");

    // Refreshed on C, replayed on D: the session ends, on every host.
    let (_, fresh) = post(&c, password()).await;
    let (access, token) = (fresh["access_token"].as_str().unwrap(), fresh["refresh_token"].as_str().unwrap());
    assert_eq!(post(&c, refresh(token)).await.0, StatusCode::OK, "refreshed on C");
    assert_eq!(post(&d, refresh(token)).await.0, StatusCode::BAD_REQUEST, "replayed on D");
    for host in [&a, &b, &c, &d] {
        assert_eq!(me(host, access).await.status(), StatusCode::UNAUTHORIZED, "the session has ended on every host");
    }
}
