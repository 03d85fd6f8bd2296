//! What the host leaves about itself: no database password in a log line or an error,
//! database files for their owner only, discovery that names only configured URLs, and
//! refusals that neither echo what was sent nor accept what is unbounded.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use loom_e2e::{HostOptions, TestHost, binary, client, register, run_within};
use reqwest::StatusCode;
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";
const MARKER: &str = "Zq8vR3kPmarker";

/// `host-server ARGS` (a command or serving), with a database URL holding `MARKER` as its
/// password; stops it after `limit` if it is still running (retrying an absent database).
fn host_server_with_url(url: &str, args: &[&str], limit: Duration) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new(binary("host-server"));
    command.arg("--data-dir").arg(dir.path()).arg("--database-url").arg(url).args(args);
    command.args(["--component"]).arg(loom_e2e::component()).arg("--trusted-signers").arg(loom_e2e::dev_signers());
    command.env_remove("DATABASE_URL").env("RUST_LOG", "trace");
    let mut child = command.stderr(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn().unwrap();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() && started.elapsed() < limit {
        // Polling a child that is either failing fast or retrying a database that is not there.
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

#[test]
fn a_database_password_reaches_no_log_and_no_error() {
    // No server listens on port 1: the host retries and says so; the admin commands fail.
    let in_query = format!("postgres://loom@127.0.0.1:1/loom?password={MARKER}");
    let unencoded = format!("postgres://loom:{}/{}@127.0.0.1:1/loom", &MARKER[..6], &MARKER[6..]);
    let in_user_part = format!("postgres://loom:{MARKER}@127.0.0.1:1/loom");
    for url in [&in_query, &unencoded, &in_user_part] {
        for args in [&["--bind", "127.0.0.1:0"][..], &["users", "list"][..]] {
            let said = host_server_with_url(url, args, Duration::from_secs(3));
            assert!(!said.is_empty(), "{url} {args:?}: said nothing");
            for part in [MARKER, &MARKER[..6], &MARKER[6..]] {
                assert!(!said.contains(part), "{url} {args:?} showed {part:?}:\n{said}");
            }
        }
    }
}

#[tokio::test]
async fn database_files_are_the_owners_alone_in_a_directory_others_may_enter() {
    let dir = tempfile::tempdir().unwrap();
    // As systemd's StateDirectory leaves it.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let database = loom_e2e::TestDatabase::fresh(loom_e2e::Backend::Sqlite, dir.path());
    let host = TestHost::spawn_in(dir.path(), HostOptions { database: Some(database), ..Default::default() });
    register(&host, "ada@example.com", PASSWORD).await;
    for name in ["loom-auth.db", "loom-auth.db-wal", "loom-auth.db-shm"] {
        let mode = std::fs::metadata(dir.path().join(name)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{name}");
    }
    let logs = host.logs();
    assert!(logs.contains("the data directory lets other users in") && logs.contains("755"), "{logs}");
    drop(host);

    // A database left readable by an older version is made owner-only at the next start.
    let path = dir.path().join("loom-auth.db");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let database = loom_e2e::TestDatabase::fresh(loom_e2e::Backend::Sqlite, dir.path());
    let _again = TestHost::spawn_in(dir.path(), HostOptions { database: Some(database), ..Default::default() });
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
}

#[tokio::test]
async fn discovery_names_the_public_url_and_is_off_without_one() {
    let public =
        HostOptions { args: vec!["--public-url".into(), "https://auth.example.com".into()], ..Default::default() };
    let host = TestHost::spawn_with(public);
    let metadata: Value =
        client().get(host.url("/.well-known/oauth-authorization-server")).send().await.unwrap().json().await.unwrap();
    assert_eq!(metadata["issuer"], "https://auth.example.com");
    assert_eq!(metadata["token_endpoint"], "https://auth.example.com/token");
    register(&host, "ada@example.com", PASSWORD).await;
    let token = loom_e2e::login(&host, "ada@example.com", PASSWORD).await;
    assert_eq!(claims(&token)["iss"], "https://auth.example.com", "tokens name the issuer the document does");

    // Without a public URL there is nothing true to publish (a request's Host is the client's
    // word): the document is off, and says why; so it is for an issuer that is not a URL.
    for (args, why) in [
        (vec![], "--public-url"),
        (
            vec!["--public-url".into(), "https://auth.example.com".into(), "--issuer".into(), "loom-auth".into()],
            "not a URL",
        ),
    ] {
        let host = TestHost::spawn_with(HostOptions { args, ..Default::default() });
        let response = client().get(host.url("/.well-known/oauth-authorization-server")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert!(response.json::<Value>().await.unwrap()["detail"].as_str().unwrap().contains(why), "{why}");
    }

    // A public URL must be https unless it names this machine, and hold no credentials (it is
    // published); an issuer likewise, and no spaces.
    for (flag, value, why) in [
        ("--public-url", "http://auth.example.com", "must be https://"),
        ("--public-url", "https://user:s3cret@auth.example.com", "user name or password"),
        ("--issuer", "https://user:s3cret@auth.example.com", "user name or password"),
        ("--issuer", " https://auth.example.com", "without spaces"),
    ] {
        let mut command = std::process::Command::new(binary("host-server"));
        command.args([flag, value, "--allow-unsigned"]);
        let outcome = run_within(command, Duration::from_secs(30));
        assert_eq!(outcome.code, Some(2), "{flag} {value}: {outcome:?}");
        assert!(outcome.stderr.contains(why), "{flag} {value}: {outcome:?}");
    }
}

fn claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn refusals_are_bounded_and_echo_nothing() {
    let host = TestHost::spawn();
    register(&host, "ada@example.com", PASSWORD).await;
    let long = format!("{}@example.com", "a".repeat(400));
    let response = client().post(host.url("/token")).form(&[("username", long.as_str()), ("password", PASSWORD)]);
    let response = response.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(response.json::<Value>().await.unwrap()["error"], "invalid_request");

    let empty = client().get(host.url("/users/me/")).header("authorization", "Bearer ").send().await.unwrap();
    assert_eq!(empty.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(empty.headers()["www-authenticate"], r#"Bearer error="invalid_request""#);
    let token = loom_e2e::login(&host, "ada@example.com", PASSWORD).await;
    let two = client()
        .get(host.url("/users/me/"))
        .header("authorization", format!("Bearer {token}"))
        .header("authorization", "Bearer garbage")
        .send()
        .await
        .unwrap();
    assert_eq!(two.status(), StatusCode::UNAUTHORIZED, "one Authorization header, not several");
    assert_eq!(two.headers()["www-authenticate"], r#"Bearer error="invalid_request""#);

    for password in [json!(40517263), json!(true), json!(["Zq8vR3kP"]), json!({"secret": "Zq8vR3kP"})] {
        let body = json!({ "email": "bob@example.com", "password": password });
        let response = client().post(host.url("/users/")).json(&body).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{password}");
        let text = response.text().await.unwrap();
        assert!(!text.contains("40517263") && !text.contains("Zq8vR3kP"), "echoes the value: {text}");
    }
}
