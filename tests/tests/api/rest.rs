//! Health, routing, hostile input, restarts and the log.

use loom_e2e::{HostOptions, TestHost, client, login, register};
use reqwest::StatusCode;
use reqwest::header::HeaderValue;
use serde_json::{Value, json};

use crate::{PASSWORD, bearer, detail, me, post_token};

#[tokio::test]
async fn healthz_reports_the_component_and_readyz_the_database() {
    let host = TestHost::spawn();
    let response = client().get(host.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let sha256 = loom_e2e::sha256(&loom_e2e::component());
    assert_eq!(body["component"]["sha256"], sha256);
    assert_eq!(body["component"]["wit_version"], "0.2.1");
    assert_eq!(body["component"]["wit_package"], "loom:auth@0.2.1");
    assert_eq!(body["component"]["second_factor"], true);
    assert_eq!(body["status"], "ok");
    assert!(body.get("database").is_none(), "liveness needs no database: {body}");

    let ready = client().get(host.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    assert_eq!(
        ready.json::<Value>().await.unwrap(),
        json!({ "status": "ready", "database": "ok", "component": sha256 })
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_with_a_detail() {
    let host = TestHost::spawn();
    let missing = client().get(host.url("/nope")).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(detail(missing).await, "Not Found");
    let wrong_method = client().get(host.url("/token")).send().await.unwrap();
    assert_eq!(wrong_method.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(detail(wrong_method).await, "Method Not Allowed");
}

#[tokio::test]
async fn no_input_gets_a_server_error() {
    let host = TestHost::spawn();
    register(&host, "ada@example.com", PASSWORD).await;
    let token = login(&host, "ada@example.com", PASSWORD).await;
    let bodies: [&[u8]; 8] = [
        b"",
        b"\x00\x01\x02\xff",
        b"null",
        b"{\"email\":null,\"password\":null}",
        b"username=%ff%fe&password=%00",
        b"username=ada%40example.com&password=x&username=again",
        b"{\"email\":\"\\ud800@example.com\",\"password\":\"xxxxxxxxxx\"}",
        b"=&&==&",
    ];
    let content_types =
        ["application/json", "application/x-www-form-urlencoded", "text/plain", "application/json; charset=latin1"];
    // Every endpoint that reads a body, with its own method, so the input reaches its parser
    // (a 404 or 405 would prove nothing); the bearer token is a valid one, so endpoints behind
    // it parse the body too.
    for (method, path) in [
        ("POST", "/users/"),
        ("POST", "/token"),
        ("POST", "/revoke"),
        ("POST", "/users/me/password"),
        // Last: it ends the token's session.
        ("POST", "/logout"),
    ] {
        for body in bodies {
            for content_type in content_types {
                let response = client()
                    .request(method.parse().unwrap(), host.url(path))
                    .header("content-type", content_type)
                    .bearer_auth(&token)
                    .body(body.to_vec())
                    .send()
                    .await
                    .unwrap();
                let status = response.status();
                assert!(
                    status.is_client_error() || status.is_success(),
                    "{path} {content_type} {body:?} gave {status}"
                );
                assert!(
                    ![StatusCode::NOT_FOUND, StatusCode::METHOD_NOT_ALLOWED].contains(&status),
                    "{method} {path} never reached its parser: {status}"
                );
                if status.is_client_error() {
                    assert!(!detail(response).await.is_empty(), "{path} {content_type} {body:?}");
                }
            }
        }
    }
    // Hostile Authorization headers reach the extractor of every endpoint behind a token.
    let headers: [&[u8]; 7] = [
        b"Bearer \x80\xff",
        b"Bearer ",
        b"Bearer a.b.c",
        b"Bearer \xc3\x28.e30.e30",
        b"Basic Og==",
        b"bearer  two words",
        b"Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.",
    ];
    for (method, path) in
        [("GET", "/users/me/"), ("GET", "/sessions"), ("DELETE", "/sessions/1"), ("POST", "/users/me/password")]
    {
        for header in headers {
            let response = client()
                .request(method.parse().unwrap(), host.url(path))
                .header("authorization", HeaderValue::from_bytes(header).unwrap())
                .header("content-type", "application/json")
                .body(r#"{"current_password":"x","new_password":"y"}"#)
                .send()
                .await
                .unwrap();
            let status = response.status();
            // 400 for a request without a token at all (RFC 6750's invalid_request), else 401.
            assert!(
                [StatusCode::BAD_REQUEST, StatusCode::UNAUTHORIZED].contains(&status),
                "{method} {path} {header:?}: {status}"
            );
            assert!(!detail(response).await.is_empty());
        }
    }
    let long = format!("Bearer {}", "a".repeat(64 * 1024));
    let response = client().get(host.url("/users/me/")).header("authorization", long).send().await.unwrap();
    assert!(response.status().is_client_error(), "{}", response.status());
}

#[tokio::test]
async fn a_restart_on_the_same_data_directory_keeps_accounts_and_tokens() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let first = TestHost::spawn_in(dir.path(), HostOptions::default());
    let database = first.database();
    let account = register(&first, "ada@example.com", PASSWORD).await;
    let token = login(&first, "ada@example.com", PASSWORD).await;
    first.stop();
    let mode = std::fs::metadata(dir.path().join("master-key")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(!dir.path().join("jwt-secret").exists(), "a new installation keeps its keys in the database only");

    let second = TestHost::spawn_in(dir.path(), HostOptions { database: Some(database), ..Default::default() });
    let response = me(&second, bearer(&token)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap(), account);
    login(&second, "ada@example.com", PASSWORD).await;
}

#[tokio::test]
async fn no_password_token_or_secret_reaches_the_log() {
    let host = TestHost::spawn();
    register(&host, "ada@example.com", PASSWORD).await;
    let token = login(&host, "ada@example.com", PASSWORD).await;
    assert_eq!(me(&host, bearer(&token)).await.status(), StatusCode::OK);
    post_token(&host, &[("username", "ada@example.com"), ("password", "a wrong guess")]).await;
    let secret = std::fs::read(host.data_dir.join("master-key")).unwrap();
    let logs = host.logs();
    assert!(logs.contains("issued an access token"), "the log is being captured:\n{logs}");
    for needle in [PASSWORD, "a wrong guess", token.as_str(), token.split('.').nth(2).unwrap()] {
        assert!(!logs.contains(needle), "{needle:?} leaked into the log:\n{logs}");
    }
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    assert!(!logs.contains(&hex));
}
