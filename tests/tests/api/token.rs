//! `POST /token`.

use std::time::{Duration, Instant};

use loom_e2e::{HostOptions, TestHost, built_component, client, register};
use reqwest::StatusCode;
use reqwest::header::CACHE_CONTROL;
use serde_json::{Value, json};

use crate::{PASSWORD, challenge, detail, post_token};

#[tokio::test]
async fn login_returns_an_uncacheable_bearer_token() {
    let host = TestHost::spawn();
    register(&host, "ada@example.com", PASSWORD).await;
    let response = post_token(&host, &[("username", "ada@example.com"), ("password", PASSWORD)]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers().get(CACHE_CONTROL).unwrap(), "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 1800);
    assert_eq!(body["access_token"].as_str().unwrap().split('.').count(), 3);
}

#[tokio::test]
async fn login_accepts_the_full_oauth2_form_and_any_email_case() {
    let host = TestHost::spawn();
    register(&host, "Case@Example.com", PASSWORD).await;
    let form = [
        ("grant_type", "password"),
        ("username", "case@example.COM"),
        ("password", PASSWORD),
        ("scope", "read write"),
        ("client_id", "loom"),
        ("client_secret", ""),
    ];
    assert_eq!(post_token(&host, &form).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn wrong_password_and_unknown_user_are_indistinguishable() {
    let host = TestHost::spawn();
    register(&host, "ada@example.com", PASSWORD).await;
    let wrong = post_token(&host, &[("username", "ada@example.com"), ("password", "not the password")]).await;
    let unknown = post_token(&host, &[("username", "nobody@example.com"), ("password", "not the password")]).await;
    for response in [wrong, unknown] {
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(challenge(&response), Some("Bearer"));
        assert_eq!(response.headers().get(CACHE_CONTROL).unwrap(), "no-store");
        assert_eq!(
            response.text().await.unwrap(),
            r#"{"detail":"Incorrect username or password","error":"invalid_grant","error_description":"Incorrect username or password"}"#
        );
    }
}

/// What an OAuth2 client reads from an error response (RFC 6749 §5.2), with FastAPI's `detail` beside it.
async fn oauth_error(response: reqwest::Response) -> (StatusCode, String, String) {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    let field = |name: &str| body[name].as_str().unwrap_or_else(|| panic!("no string {name} in {body}")).to_owned();
    let description = field("error_description");
    assert!(
        description.bytes().all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5b | 0x5d..=0x7e)),
        "error_description outside RFC 6749's character set: {description:?}"
    );
    assert!(!field("detail").is_empty(), "{body}");
    (status, field("error"), description)
}

#[tokio::test]
async fn token_errors_carry_rfc_6749_error_codes() {
    let host = TestHost::spawn();
    register(&host, "ada@example.com", PASSWORD).await;
    let long = "x".repeat(1025);
    let cases = [
        (
            vec![("username", "ada@example.com"), ("password", "wrong password")],
            StatusCode::UNAUTHORIZED,
            "invalid_grant",
        ),
        (
            vec![("grant_type", "client_credentials"), ("username", "ada@example.com"), ("password", PASSWORD)],
            StatusCode::UNPROCESSABLE_ENTITY,
            "unsupported_grant_type",
        ),
        (vec![("username", "ada@example.com")], StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
        (vec![("password", PASSWORD)], StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
        (
            vec![("username", "ada@example.com"), ("password", long.as_str())],
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
    ];
    for (form, status, code) in cases {
        let (got_status, got_code, _) = oauth_error(post_token(&host, &form).await).await;
        assert_eq!((got_status, got_code.as_str()), (status, code), "{form:?}");
    }
    let not_a_form = client().post(host.url("/token")).json(&json!({ "username": "ada@example.com" })).send();
    let (status, code, description) = oauth_error(not_a_form.await.unwrap()).await;
    assert_eq!((status, code.as_str()), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"));
    assert!(description.contains("form"), "{description}");
}

#[tokio::test]
async fn a_component_that_cannot_issue_after_a_right_password_is_a_503() {
    let options = HostOptions { component: Some(built_component("fixtures/issue-fails.wasm")), ..Default::default() };
    let host = TestHost::spawn_with(options);
    register(&host, "ada@example.com", PASSWORD).await;
    let response = post_token(&host, &[("username", "ada@example.com"), ("password", PASSWORD)]).await;
    let (status, code, _) = oauth_error(response).await;
    assert_eq!((status, code.as_str()), (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable"));
    // A wrong password is still the user's mistake.
    let wrong = post_token(&host, &[("username", "ada@example.com"), ("password", "wrong password")]).await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    host.wait_for_log("could not issue a token");
}

#[tokio::test]
async fn a_corrupt_stored_hash_answers_like_a_wrong_password_in_the_same_time() {
    let host = unthrottled();
    let broken = register(&host, "broken@example.com", PASSWORD).await;
    register(&host, "ada@example.com", PASSWORD).await;
    host.sql("UPDATE users SET hashed_password = '$argon2id$not-a-hash' WHERE email = 'broken@example.com'");

    let (mut corrupt, mut wrong) = (Vec::new(), Vec::new());
    for _ in 0..7 {
        for (email, password, times) in
            [("broken@example.com", PASSWORD, &mut corrupt), ("ada@example.com", "wrong password", &mut wrong)]
        {
            let started = Instant::now();
            let response = post_token(&host, &[("username", email), ("password", password)]).await;
            times.push(started.elapsed());
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{email}");
            assert_eq!(
                response.json::<Value>().await.unwrap(),
                json!({ "detail": "Incorrect username or password", "error": "invalid_grant",
                        "error_description": "Incorrect username or password" })
            );
        }
    }
    let ratio = fastest(&corrupt) / fastest(&wrong);
    assert!((0.5..2.0).contains(&ratio), "corrupt-hash/wrong-password login time ratio {ratio:.2}");
    let logs = host.logs();
    let line = logs.lines().find(|l| l.contains("not a valid PHC string")).unwrap_or_else(|| panic!("{logs}"));
    assert!(line.contains("ERROR") && line.contains(&format!("user_id={}", broken["id"])), "{line}");
}

/// A host that lets the timing tests make many failed logins.
fn unthrottled() -> TestHost {
    TestHost::spawn_with(HostOptions { args: vec!["--login-max-failures".into(), "1000".into()], ..Default::default() })
}

/// The fastest of interleaved runs: machine noise (other tests hashing on the
/// same cores) only ever adds time, so the minimum is the closest to the work a
/// path really does, where a median still moves with the load.
fn fastest(times: &[Duration]) -> f64 {
    times.iter().min().expect("at least one run").as_secs_f64()
}

#[tokio::test]
async fn unknown_users_cost_a_hash_like_known_ones() {
    // Without the dummy hash an unknown user answers in ~1 ms against ~60 ms for a
    // wrong password; the fastest of interleaved runs keeps machine noise out of the comparison.
    let host = unthrottled();
    register(&host, "ada@example.com", PASSWORD).await;
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for _ in 0..7 {
        for (email, times) in [("ada@example.com", &mut known), ("nobody@example.com", &mut unknown)] {
            let started = Instant::now();
            let response = post_token(&host, &[("username", email), ("password", "wrong password")]).await;
            times.push(started.elapsed());
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        }
    }
    let ratio = fastest(&unknown) / fastest(&known);
    assert!((0.5..2.0).contains(&ratio), "unknown/known login time ratio {ratio:.2}");
}

#[tokio::test]
async fn bad_token_requests_are_422() {
    let host = TestHost::spawn();
    register(&host, "ada@example.com", PASSWORD).await;
    let long = "x".repeat(1025);
    for form in [
        vec![("username", "ada@example.com")],
        vec![("password", PASSWORD)],
        vec![("grant_type", "client_credentials"), ("username", "ada@example.com"), ("password", PASSWORD)],
        vec![("username", ""), ("password", PASSWORD)],
        vec![("username", "ada@example.com"), ("password", "")],
        vec![("username", "ada@example.com"), ("password", long.as_str())],
    ] {
        let response = post_token(&host, &form).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{form:?}");
        assert!(!detail(response).await.is_empty());
    }
    let json = client()
        .post(host.url("/token"))
        .json(&json!({ "username": "ada@example.com", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), StatusCode::UNPROCESSABLE_ENTITY);
}
