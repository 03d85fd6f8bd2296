//! `POST /token`.

use std::time::{Duration, Instant};

use loom_e2e::{TestHost, client, register};
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
        assert_eq!(response.text().await.unwrap(), r#"{"detail":"Incorrect username or password"}"#);
    }
}

#[tokio::test]
async fn unknown_users_cost_a_hash_like_known_ones() {
    // Without the dummy hash an unknown user answers in ~1 ms against ~60 ms for a
    // wrong password; interleaved medians keep machine noise out of the comparison.
    let host = TestHost::spawn();
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
    let median = |times: &mut Vec<Duration>| {
        times.sort();
        times[times.len() / 2].as_secs_f64()
    };
    let ratio = median(&mut unknown) / median(&mut known);
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
        vec![("grant_type", ""), ("username", "ada@example.com"), ("password", PASSWORD)],
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
