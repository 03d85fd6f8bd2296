//! `POST /logout`: server-side revocation of one token, or of every token of a user.

use loom_e2e::{HostOptions, TestHost, client, login, register};
use reqwest::StatusCode;

use crate::{PASSWORD, bearer, detail, me};

pub(crate) async fn logout(host: &TestHost, token: &str, query: &str) -> reqwest::Response {
    client().post(host.url(&format!("/logout{query}"))).bearer_auth(token).send().await.unwrap()
}

async fn refused(host: &TestHost, token: &str) -> bool {
    let response = me(host, bearer(token)).await;
    match response.status() {
        StatusCode::OK => false,
        StatusCode::UNAUTHORIZED => {
            assert_eq!(detail(response).await, "Could not validate credentials");
            true
        }
        other => panic!("unexpected {other}"),
    }
}

#[tokio::test]
async fn logout_revokes_that_token_only() {
    let host = TestHost::spawn();
    register(&host, "ada@example.com", PASSWORD).await;
    let (first, second) =
        (login(&host, "ada@example.com", PASSWORD).await, login(&host, "ada@example.com", PASSWORD).await);
    let response = logout(&host, &first, "").await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(refused(&host, &first).await);
    assert!(!refused(&host, &second).await, "the user's other session goes on");
    // A revoked token cannot log out again, nor is it of use anywhere.
    assert_eq!(logout(&host, &first, "").await.status(), StatusCode::UNAUTHORIZED);
    let anonymous = client().post(host.url("/logout")).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    // `scope` without a value is as if not sent: this token only.
    let third = login(&host, "ada@example.com", PASSWORD).await;
    assert_eq!(logout(&host, &second, "?scope=").await.status(), StatusCode::NO_CONTENT);
    assert!(refused(&host, &second).await);
    assert!(!refused(&host, &third).await, "not a global logout");
}

#[tokio::test]
async fn a_global_logout_revokes_every_token_of_that_user_only() {
    let host = TestHost::spawn();
    register(&host, "ada@example.com", PASSWORD).await;
    register(&host, "bob@example.com", PASSWORD).await;
    let ada: Vec<String> =
        vec![login(&host, "ada@example.com", PASSWORD).await, login(&host, "ada@example.com", PASSWORD).await];
    let bob = login(&host, "bob@example.com", PASSWORD).await;
    // Tokens issued before the logout's second are refused; wait for the clock to move on.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(logout(&host, &ada[0], "?scope=global").await.status(), StatusCode::NO_CONTENT);
    for token in &ada {
        assert!(refused(&host, token).await);
    }
    assert!(!refused(&host, &bob).await, "other users are unaffected");
    // Logging in again works at once.
    let fresh = login(&host, "ada@example.com", PASSWORD).await;
    assert!(!refused(&host, &fresh).await);
    assert_eq!(logout(&host, &fresh, "?scope=everything").await.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_token_revoked_on_one_host_is_refused_by_another_on_the_same_database() {
    // Two hosts on one data directory (one signing secret) and one database.
    let dir = tempfile::tempdir().unwrap();
    let a = TestHost::spawn_in(dir.path(), Default::default());
    let b = TestHost::spawn_in(dir.path(), HostOptions { database: Some(a.database()), ..Default::default() });
    register(&a, "ada@example.com", PASSWORD).await;
    let token = login(&b, "ada@example.com", PASSWORD).await;
    assert!(!refused(&a, &token).await, "a token from B is good on A");
    assert_eq!(logout(&b, &token, "").await.status(), StatusCode::NO_CONTENT);
    assert!(refused(&a, &token).await, "revoked on B, refused on A at once");
}
