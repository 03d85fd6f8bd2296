//! `host-server users list|deactivate|activate`, run against the database of a
//! host that is serving: the host sees the change on the very next request.
//! Runs on SQLite, and on PostgreSQL with `LOOM_TEST_BACKEND=postgres`.

use loom_e2e::{Outcome, TestHost, binary, client, login, register, run};
use reqwest::StatusCode;
use serde_json::Value;

const PASSWORD: &str = "correct horse battery staple";

fn users(host: &TestHost, args: &[&str]) -> Outcome {
    let mut command = std::process::Command::new(binary("host-server"));
    command.arg("--data-dir").arg(&host.data_dir);
    if !host.database_url.starts_with("sqlite:") {
        // On SQLite the data directory alone names the database; elsewhere the URL does.
        command.arg("--database-url").arg(&host.database_url);
    }
    command.arg("users").args(args);
    command.env_remove("DATABASE_URL").env_remove("LOOM_AUTH_DATA_DIR");
    run(command, None)
}

async fn me_status(host: &TestHost, token: &str) -> StatusCode {
    client().get(host.url("/users/me/")).bearer_auth(token).send().await.unwrap().status()
}

async fn login_body(host: &TestHost, password: &str) -> (StatusCode, Value) {
    let form = [("username", "ada@example.com"), ("password", password)];
    let response = client().post(host.url("/token")).form(&form).send().await.unwrap();
    (response.status(), response.json().await.unwrap())
}

#[tokio::test]
async fn deactivation_ends_logins_and_sessions_at_once_and_activation_restores_them() {
    let host = TestHost::spawn();
    register(&host, "ada@example.com", PASSWORD).await;
    register(&host, "bob@example.com", PASSWORD).await;
    let token = login(&host, "ada@example.com", PASSWORD).await;
    let (_, body) = login_body(&host, PASSWORD).await;
    let refresh_token = body["refresh_token"].as_str().unwrap().to_owned();

    // At once: sessions end by their own row, with no clock comparison.
    let off = users(&host, &["deactivate", "ADA@example.com"]);
    assert_eq!(off.code, Some(0), "{off:?}");
    assert_eq!(off.stdout.trim(), "Deactivated ADA@example.com (ended 2 sessions and 0 personal access tokens)");
    assert_eq!(me_status(&host, &token).await, StatusCode::UNAUTHORIZED);
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token.as_str())];
    let refreshed = client().post(host.url("/token")).form(&form).send().await.unwrap();
    assert_eq!(refreshed.status(), StatusCode::BAD_REQUEST, "its refresh tokens end too");
    // The right password gets exactly what a wrong one gets.
    assert_eq!(login_body(&host, PASSWORD).await, login_body(&host, "wrong password").await);

    let list = users(&host, &["list"]);
    assert_eq!(list.code, Some(0), "{list:?}");
    let lines: Vec<&str> = list.stdout.lines().collect();
    assert!(lines[0].contains("EMAIL") && lines[0].contains("ACTIVE"), "{}", list.stdout);
    assert!(lines[1].contains("ada@example.com") && lines[1].contains(" no "), "{}", list.stdout);
    assert!(lines[2].contains("bob@example.com") && lines[2].contains(" yes "), "{}", list.stdout);

    let on = users(&host, &["activate", "ada@example.com"]);
    assert_eq!(on.code, Some(0), "{on:?}");
    let fresh = login(&host, "ada@example.com", PASSWORD).await;
    assert_eq!(me_status(&host, &fresh).await, StatusCode::OK);
    assert_eq!(me_status(&host, &token).await, StatusCode::UNAUTHORIZED, "old sessions do not come back");

    let unknown = users(&host, &["deactivate", "nobody@example.com"]);
    assert_eq!(unknown.code, Some(1));
    assert_eq!(unknown.stderr.trim(), "error: there is no account with the email nobody@example.com");
}

#[tokio::test]
async fn reset_2fa_turns_off_a_lost_phones_second_factor() {
    let host = TestHost::spawn();
    register(&host, "ada@example.com", PASSWORD).await;
    let token = login(&host, "ada@example.com", PASSWORD).await;
    let enrol = client().post(host.url("/users/me/2fa")).bearer_auth(&token);
    let enrolled: Value =
        enrol.json(&serde_json::json!({"password": PASSWORD})).send().await.unwrap().json().await.unwrap();
    let secret = enrolled["secret"].as_str().unwrap();
    let code = loom_e2e::totp::code_at(secret, loom_e2e::totp::now() + 30);
    let confirm = client().post(host.url("/users/me/2fa/confirm")).bearer_auth(&token);
    assert_eq!(confirm.json(&serde_json::json!({"code": code})).send().await.unwrap().status(), StatusCode::NO_CONTENT);
    assert_eq!(login_body(&host, PASSWORD).await.0, StatusCode::FORBIDDEN, "a code is needed");

    let reset = users(&host, &["reset-2fa", "ADA@example.com"]);
    assert_eq!(reset.code, Some(0), "{reset:?}");
    assert!(reset.stdout.starts_with("Turned off two-factor login for ADA@example.com"), "{reset:?}");
    assert_eq!(login_body(&host, PASSWORD).await.0, StatusCode::OK, "the password alone logs in");
    let again = users(&host, &["reset-2fa", "ada@example.com"]);
    assert_eq!(
        (again.code, again.stdout.trim()),
        (Some(0), "ada@example.com has no two-factor login; nothing changed")
    );
    let unknown = users(&host, &["reset-2fa", "nobody@example.com"]);
    assert_eq!(unknown.code, Some(1), "{unknown:?}");
    assert!(unknown.stderr.contains("there is no account with the email nobody@example.com"), "{unknown:?}");
}
