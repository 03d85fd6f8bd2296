//! `GET /users/me/`.

use std::time::{Duration, Instant};

use loom_e2e::{HostOptions, TestHost, client, login, register};
use reqwest::StatusCode;
use reqwest::header::HeaderValue;
use serde_json::Value;

use crate::{PASSWORD, bearer, challenge, detail, me, post_token};

#[tokio::test]
async fn me_returns_the_token_owner_with_or_without_the_slash() {
    let host = TestHost::spawn();
    let account = register(&host, "ada@example.com", PASSWORD).await;
    let token = login(&host, "ada@example.com", PASSWORD).await;
    for path in ["/users/me/", "/users/me"] {
        let response = client().get(host.url(path)).bearer_auth(&token).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(response.json::<Value>().await.unwrap(), account);
    }
    // The scheme is case-insensitive.
    let lower = me(&host, Some(HeaderValue::from_str(&format!("bearer {token}")).unwrap())).await;
    assert_eq!(lower.status(), StatusCode::OK);
}

#[tokio::test]
async fn me_without_credentials_is_not_authenticated() {
    let host = TestHost::spawn();
    for authorization in
        [None, Some(HeaderValue::from_static("Basic YWRhOnNlY3JldA==")), Some(HeaderValue::from_static(""))]
    {
        let response = me(&host, authorization.clone()).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{authorization:?}");
        assert_eq!(challenge(&response), Some("Bearer"));
        assert_eq!(detail(response).await, "Not authenticated");
    }
}

#[tokio::test]
async fn me_with_a_bad_token_cannot_validate_credentials() {
    let host = TestHost::spawn();
    register(&host, "ada@example.com", PASSWORD).await;
    let token = login(&host, "ada@example.com", PASSWORD).await;
    let (head, signature) = token.rsplit_once('.').unwrap();
    let flipped = if signature.starts_with('A') { "B" } else { "A" };
    let tampered = format!("{head}.{flipped}{}", &signature[1..]);
    let claims = token.split('.').nth(1).unwrap();
    let alg_none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{claims}.");
    let other_host = TestHost::spawn();
    register(&other_host, "ada@example.com", PASSWORD).await;
    let foreign = login(&other_host, "ada@example.com", PASSWORD).await;
    let mut bad: Vec<HeaderValue> = ["garbage", "a.b.c", tampered.as_str(), alg_none.as_str(), foreign.as_str()]
        .iter()
        .map(|t| bearer(t).unwrap())
        .collect();
    bad.push(HeaderValue::from_bytes(b"Bearer \xff\xfe.\xc3\x28.\x80").unwrap());
    bad.push(HeaderValue::from_str(&format!("Bearer {}", &token[..token.len() - 10])).unwrap());
    for authorization in bad {
        let response = me(&host, Some(authorization.clone())).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{authorization:?}");
        assert_eq!(challenge(&response), Some(r#"Bearer error="invalid_token""#));
        assert_eq!(detail(response).await, "Could not validate credentials");
    }
    // `Bearer` with nothing after it is a malformed request, not a bad token (RFC 6750 §3.1).
    let response = me(&host, bearer("")).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(challenge(&response), Some(r#"Bearer error="invalid_request""#));
    assert_eq!(detail(response).await, "The Authorization header names no bearer token");
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    let host = TestHost::spawn_with(HostOptions { token_ttl: Some(3), leeway: Some(0), ..Default::default() });
    register(&host, "ada@example.com", PASSWORD).await;
    let token = login(&host, "ada@example.com", PASSWORD).await;
    // It works first (at least two of its three seconds are left: `exp` is whole seconds).
    assert_eq!(me(&host, bearer(&token)).await.status(), StatusCode::OK, "the token works before it expires");
    // Wait for the clock, not for the host: poll until the lifetime has passed.
    let deadline = Instant::now() + Duration::from_secs(15);
    let response = loop {
        let response = me(&host, bearer(&token)).await;
        if response.status() != StatusCode::OK || Instant::now() > deadline {
            break response;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(challenge(&response), Some(r#"Bearer error="invalid_token""#));
    assert_eq!(detail(response).await, "Could not validate credentials");
}

/// A token secret from before 0.2, which a host imports as its legacy key.
const LEGACY_SECRET: &[u8] = b"a token secret from before 0.2!!";

/// A token signed with the host's legacy key (see [`LEGACY_SECRET`]) for any subject.
fn forge(subject: &str) -> String {
    let key = LEGACY_SECRET;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let settings = auth_guest::tokens::TokenSettings {
        issuer: "loom-auth",
        audience: "loom",
        now,
        ttl_seconds: 600,
        leeway_seconds: 5,
    };
    // The secret file's key is the one without a kid.
    let key = auth_guest::tokens::SigningKey { kid: None, alg: auth_guest::keys::Algorithm::Hs256, private: key };
    auth_guest::tokens::issue(&settings, &key, subject, "loom", &[]).unwrap().0
}

#[tokio::test]
async fn tokens_for_gone_or_inactive_users_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("jwt-secret"), LEGACY_SECRET).unwrap();
    let host = TestHost::spawn_in(dir.path(), loom_e2e::HostOptions::default());
    let account = register(&host, "ada@example.com", PASSWORD).await;
    // A well-signed token is accepted for the account it names...
    let id = account["id"].as_i64().unwrap().to_string();
    assert_eq!(me(&host, bearer(&forge(&id))).await.status(), StatusCode::OK);
    // ...but not for an account that does not exist or a subject that is no id.
    for subject in ["999999", "not-a-number"] {
        let response = me(&host, bearer(&forge(subject))).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{subject}");
        assert_eq!(detail(response).await, "Could not validate credentials");
    }
    // Deactivate the account behind the host's back: its token stops working.
    let token = login(&host, "ada@example.com", PASSWORD).await;
    host.sql("UPDATE users SET is_active = FALSE");
    let response = me(&host, bearer(&token)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(detail(response).await, "Could not validate credentials");
    let login = post_token(&host, &[("username", "ada@example.com"), ("password", PASSWORD)]).await;
    assert_eq!(login.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn many_requests_at_once_each_get_their_own_account_and_standing() {
    // On PostgreSQL, lookups that arrive together are answered by one statement: each answer
    // must go back to its own request.
    let host = TestHost::spawn();
    let mut live = Vec::new();
    let mut revoked = Vec::new();
    for n in 0..6 {
        let email = format!("user{n}@example.com");
        register(&host, &email, PASSWORD).await;
        live.push((login(&host, &email, PASSWORD).await, email.clone()));
        let gone = login(&host, &email, PASSWORD).await;
        let response = crate::logout::logout(&host, &gone, "").await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT, "logging {email} out of one session");
        revoked.push(gone);
    }
    let http = client();
    let mut asked = tokio::task::JoinSet::new();
    for round in 0..40 {
        for (n, (token, email)) in live.iter().enumerate() {
            let request = http.get(host.url("/users/me/")).bearer_auth(token).send();
            let email = email.clone();
            asked.spawn(async move {
                let response = request.await.unwrap();
                assert_eq!(response.status(), StatusCode::OK, "{email}");
                assert_eq!(response.json::<Value>().await.unwrap()["email"], email.as_str());
            });
            if (round + n) % 3 == 0 {
                let request = http.get(host.url("/users/me/")).bearer_auth(&revoked[n]).send();
                asked.spawn(async move {
                    assert_eq!(request.await.unwrap().status(), StatusCode::UNAUTHORIZED, "a revoked session");
                });
            }
        }
    }
    while let Some(done) = asked.join_next().await {
        done.expect("each request got its own answer");
    }
}
