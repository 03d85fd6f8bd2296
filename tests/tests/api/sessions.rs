//! Sessions: the refresh grant and its rotation, the grace for honest retries, replays,
//! every way a session ends, and the password change.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use loom_e2e::{HostOptions, TestHost, client, register};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{PASSWORD, bearer, me, post_token};

pub(crate) const EMAIL: &str = "ada@example.com";

/// A host whose spent refresh tokens get no grace, so a replay is one at once.
fn strict() -> TestHost {
    TestHost::spawn_with(HostOptions { args: vec!["--refresh-reuse-grace".into(), "0".into()], ..Default::default() })
}

/// Logs in: (access token, refresh token).
pub(crate) async fn pair(host: &TestHost) -> (String, String) {
    let response = post_token(host, &[("username", EMAIL), ("password", PASSWORD)]).await;
    assert_eq!(response.status(), StatusCode::OK);
    tokens(response).await
}

pub(crate) async fn tokens(response: reqwest::Response) -> (String, String) {
    let body: Value = response.json().await.unwrap();
    let field = |name: &str| body[name].as_str().unwrap_or_else(|| panic!("no {name} in {body}")).to_owned();
    (field("access_token"), field("refresh_token"))
}

pub(crate) async fn refresh(host: &TestHost, token: &str) -> reqwest::Response {
    post_token(host, &[("grant_type", "refresh_token"), ("refresh_token", token)]).await
}

/// `400 invalid_grant`, as RFC 6749 §5.2 says for a refresh token that cannot be used.
pub(crate) async fn assert_invalid_grant(response: reqwest::Response) {
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant", "{body}");
    assert!(body["detail"].is_string() && body["error_description"].is_string(), "{body}");
}

fn sid(access: &str) -> String {
    let payload = access.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["sid"].as_str().expect("a sid claim").to_owned()
}

pub(crate) async fn works(host: &TestHost, access: &str) -> bool {
    match me(host, bearer(access)).await.status() {
        StatusCode::OK => true,
        StatusCode::UNAUTHORIZED => false,
        other => panic!("{other}"),
    }
}

pub(crate) async fn sessions(host: &TestHost, access: &str) -> Vec<Value> {
    let response = client().get(host.url("/sessions")).bearer_auth(access).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

#[tokio::test]
async fn a_refresh_rotates_the_pair_within_one_session() {
    let host = strict();
    register(&host, EMAIL, PASSWORD).await;
    let response = post_token(&host, &[("username", EMAIL), ("password", PASSWORD)]).await;
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert!(body["refresh_token"].as_str().unwrap().starts_with("loomrt_"), "{body}");
    assert_eq!(body["refresh_expires_in"], 30 * 86_400);
    let (access, first) = (body["access_token"].as_str().unwrap().to_owned(), body["refresh_token"].as_str().unwrap());
    let response = refresh(&host, first).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let (new_access, second) = tokens(response).await;
    assert_ne!(second, first);
    assert_eq!(sid(&new_access), sid(&access), "one session across refreshes");
    assert!(works(&host, &new_access).await && works(&host, &access).await);
    let (_, third) = tokens(refresh(&host, &second).await).await;
    assert_eq!(sessions(&host, &new_access).await.len(), 1);
    // A second login is a second session.
    let (other, _) = pair(&host).await;
    assert_ne!(sid(&other), sid(&access));
    assert_eq!(sessions(&host, &other).await.len(), 2);
    assert_eq!(refresh(&host, &third).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn refresh_tokens_that_cannot_be_used_are_invalid_grants() {
    let host = strict();
    register(&host, EMAIL, PASSWORD).await;
    let (access, refresh_token) = pair(&host).await;
    for garbage in ["garbage", "loomrt_AAAA", access.as_str()] {
        assert_invalid_grant(refresh(&host, garbage).await).await;
    }
    // Bound to the client that logged in: another client named in the form, or by HTTP Basic.
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token.as_str()), ("client_id", "other")];
    assert_invalid_grant(post_token(&host, &form).await).await;
    let basic = client()
        .post(host.url("/token"))
        .basic_auth("other", Some(""))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", refresh_token.as_str())])
        .send()
        .await
        .unwrap();
    assert_invalid_grant(basic).await;
    // The session's own client may be named.
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token.as_str()), ("client_id", "loom")];
    assert_eq!(post_token(&host, &form).await.status(), StatusCode::OK);
    // A malformed request keeps the invalid_request convention.
    let missing = post_token(&host, &[("grant_type", "refresh_token")]).await;
    assert_eq!(missing.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(missing.json::<Value>().await.unwrap()["error"], "invalid_request");
}

#[tokio::test]
async fn a_replay_after_the_grace_ends_the_whole_session() {
    let host = strict();
    register(&host, EMAIL, PASSWORD).await;
    let (access, first) = pair(&host).await;
    let (newest_access, second) = tokens(refresh(&host, &first).await).await;
    // A thief replays the spent token: refused, and the session it belonged to ends...
    assert_invalid_grant(refresh(&host, &first).await).await;
    // ...with its newest refresh token and every access token it had.
    assert_invalid_grant(refresh(&host, &second).await).await;
    assert!(!works(&host, &newest_access).await && !works(&host, &access).await);
    host.wait_for_log("refresh.reused");
    // A new login is unaffected.
    let (fresh, _) = pair(&host).await;
    assert!(works(&host, &fresh).await);
}

/// A thief copies the owner's refresh token and rotates it `times` times; the owner's copy,
/// presented after the grace, ends the session: the thief's newest token with it.
async fn a_thief_rotating(host: &TestHost, times: usize) {
    let (owners_access, owners) = pair(host).await;
    let mut thiefs = (String::new(), owners.clone());
    for _ in 0..times {
        let response = refresh(host, &thiefs.1).await;
        assert_eq!(response.status(), StatusCode::OK);
        thiefs = tokens(response).await;
    }
    let reused = host.logs().matches("refresh.reused").count();
    let replay = refresh(host, &owners).await;
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    let body: Value = replay.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("already used by another copy"), "{times}: {body}");
    assert_invalid_grant(refresh(host, &thiefs.1).await).await;
    assert!(!works(host, &thiefs.0).await && !works(host, &owners_access).await, "{times}: the access tokens too");
    host.wait_for_log_count("refresh.reused", reused + 1);
}

#[tokio::test]
async fn every_refresh_token_a_session_spent_ends_it_when_it_comes_back() {
    let host = strict();
    register(&host, EMAIL, PASSWORD).await;
    for times in [2, 5] {
        a_thief_rotating(&host, times).await;
    }
    // A token from the middle of a chain ends it too.
    let (_, first) = pair(&host).await;
    let mut chain = vec![first];
    for _ in 0..5 {
        let (_, next) = tokens(refresh(&host, chain.last().unwrap()).await).await;
        chain.push(next);
    }
    assert_invalid_grant(refresh(&host, &chain[2]).await).await;
    assert_invalid_grant(refresh(&host, &chain[5]).await).await;
    // A token shaped like one but not made here, naming a live session, ends nothing.
    let (access, live) = pair(&host).await;
    let forged = format!("loomrt_{}.1.{}", sid(&access), "A".repeat(43));
    assert_invalid_grant(refresh(&host, &forged).await).await;
    assert_eq!(refresh(&host, &live).await.status(), StatusCode::OK, "the session goes on");
}

#[tokio::test]
async fn within_the_grace_only_the_token_just_spent_answers_again() {
    let host = TestHost::spawn();
    register(&host, EMAIL, PASSWORD).await;
    let (_, first) = pair(&host).await;
    let (_, second) = tokens(refresh(&host, &first).await).await;
    let (third_access, _) = tokens(refresh(&host, &second).await).await;
    // `first` is two rotations old: a replay at once, grace or not.
    assert_invalid_grant(refresh(&host, &first).await).await;
    assert!(!works(&host, &third_access).await, "the session has ended");
    host.wait_for_log("refresh.reused");
}

#[tokio::test]
async fn a_retry_within_the_grace_gets_the_same_successor_and_keeps_one_session() {
    let host = TestHost::spawn();
    register(&host, EMAIL, PASSWORD).await;
    let (_, first) = pair(&host).await;
    let (_, successor) = tokens(refresh(&host, &first).await).await;
    // The answer was lost; the client tries again with the same token.
    let (retried_access, retried) = tokens(refresh(&host, &first).await).await;
    assert_eq!(retried, successor, "the same successor: nothing forks");
    assert_eq!(sessions(&host, &retried_access).await.len(), 1);
    // Twelve processes refresh the same token at once: all succeed, the chain goes on.
    let (_, shared) = tokens(refresh(&host, &successor).await).await;
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let (url, token) = (host.url("/token"), shared.clone());
        burst.spawn(async move {
            let form = [("grant_type", "refresh_token"), ("refresh_token", token.as_str())];
            let response = client().post(url).form(&form).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            tokens(response).await
        });
    }
    let mut successors = std::collections::BTreeSet::new();
    let mut access = String::new();
    while let Some(outcome) = burst.join_next().await {
        let (a, r) = outcome.unwrap();
        successors.insert(r);
        access = a;
    }
    assert_eq!(successors.len(), 1, "every concurrent refresh got the one successor");
    assert_eq!(sessions(&host, &access).await.len(), 1, "still one session");
    let next = successors.into_iter().next().unwrap();
    assert_eq!(refresh(&host, &next).await.status(), StatusCode::OK, "the chain continues");
}

#[tokio::test]
async fn logout_revocation_and_delete_each_end_a_session_at_once() {
    let host = strict();
    register(&host, EMAIL, PASSWORD).await;
    register(&host, "bob@example.com", PASSWORD).await;
    let logout = |access: String, query: &'static str| {
        let url = host.url(&format!("/logout{query}"));
        async move { client().post(url).bearer_auth(access).send().await.unwrap().status() }
    };
    // POST /logout ends the caller's session, refresh token included.
    let (access, refresh_token) = pair(&host).await;
    let (other_access, other_refresh) = pair(&host).await;
    assert_eq!(logout(access.clone(), "").await, StatusCode::NO_CONTENT);
    assert!(!works(&host, &access).await);
    assert_invalid_grant(refresh(&host, &refresh_token).await).await;
    assert!(works(&host, &other_access).await, "the other session goes on");

    // RFC 7009: the refresh token, or the access token, ends its session; unknown ones are fine.
    let revoke = |token: String| {
        let url = host.url("/revoke");
        async move { client().post(url).form(&[("token", token.as_str())]).send().await.unwrap().status() }
    };
    assert_eq!(revoke(other_refresh.clone()).await, StatusCode::OK);
    assert!(!works(&host, &other_access).await);
    let (access, refresh_token) = pair(&host).await;
    assert_eq!(revoke(access.clone()).await, StatusCode::OK);
    assert_invalid_grant(refresh(&host, &refresh_token).await).await;
    assert_eq!(revoke("not a token at all".into()).await, StatusCode::OK);

    // DELETE /sessions/{id}: one of the caller's; another account's is as unknown as none.
    let (keeper, _) = pair(&host).await;
    let (doomed, doomed_refresh) = pair(&host).await;
    let delete = |caller: &str, id: &str| {
        client().delete(host.url(&format!("/sessions/{id}"))).bearer_auth(caller.to_owned()).send()
    };
    let bob = loom_e2e::login(&host, "bob@example.com", PASSWORD).await;
    assert_eq!(delete(&bob, &sid(&doomed)).await.unwrap().status(), StatusCode::NOT_FOUND);
    assert!(works(&host, &doomed).await);
    assert_eq!(delete(&keeper, &sid(&doomed)).await.unwrap().status(), StatusCode::NO_CONTENT);
    assert!(!works(&host, &doomed).await && works(&host, &keeper).await);
    assert_invalid_grant(refresh(&host, &doomed_refresh).await).await;
    assert_eq!(delete(&keeper, "no-such-session").await.unwrap().status(), StatusCode::NOT_FOUND);

    // Everywhere: sessions begun in the same second as the logout too (no clock comparison).
    let (a, a_refresh) = pair(&host).await;
    let (b, _) = pair(&host).await;
    assert_eq!(logout(a.clone(), "?scope=global").await, StatusCode::NO_CONTENT);
    for token in [&a, &b, &keeper] {
        assert!(!works(&host, token).await);
    }
    assert_invalid_grant(refresh(&host, &a_refresh).await).await;
    assert!(works(&host, &bob).await, "other accounts are untouched");
    let (again, _) = pair(&host).await;
    assert!(works(&host, &again).await, "a login right after works");
}

#[tokio::test]
async fn the_sessions_list_shows_each_login_newest_use_first() {
    let host = TestHost::spawn();
    register(&host, EMAIL, PASSWORD).await;
    let first = post_token(&host, &[("username", EMAIL), ("password", PASSWORD)]);
    let (older, _) = tokens(first.await).await;
    let newer = client()
        .post(host.url("/token"))
        .header("user-agent", "loom-test/1.0")
        .form(&[("username", EMAIL), ("password", PASSWORD), ("client_id", "loom-ci")])
        .send()
        .await
        .unwrap();
    let (newer, _) = tokens(newer).await;
    let listed = sessions(&host, &newer).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    let mine = listed.iter().find(|s| s["current"] == true).expect("the caller's own session");
    assert_eq!(mine["id"], sid(&newer));
    assert_eq!((mine["client_id"].as_str(), mine["user_agent"].as_str()), (Some("loom-ci"), Some("loom-test/1.0")));
    assert_eq!(mine["address"], "127.0.0.1");
    for field in ["created_at", "last_used_at"] {
        humantime::parse_rfc3339(mine[field].as_str().unwrap()).expect("RFC 3339");
    }
    assert_eq!(listed.iter().filter(|s| s["current"] == true).count(), 1);
    assert!(listed.iter().any(|s| s["id"] == sid(&older)));
}

#[tokio::test]
async fn a_password_change_checks_the_current_one_and_ends_every_other_session() {
    let host = TestHost::spawn_with(HostOptions {
        args: vec!["--login-max-failures".into(), "3".into()],
        ..Default::default()
    });
    register(&host, EMAIL, PASSWORD).await;
    let (mine, my_refresh) = pair(&host).await;
    let (elsewhere, elsewhere_refresh) = pair(&host).await;
    let change = |current: &str, new: &str| {
        let body = json!({ "current_password": current, "new_password": new });
        client().post(host.url("/users/me/password")).bearer_auth(mine.clone()).json(&body).send()
    };
    let wrong = change("not the password", "a brand new passphrase 7").await.unwrap();
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    assert_eq!(wrong.json::<Value>().await.unwrap()["detail"], "The current password is incorrect");
    let weak = change(PASSWORD, "password1").await.unwrap();
    assert_eq!(weak.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let done = change(PASSWORD, "a brand new passphrase 7").await.unwrap();
    assert_eq!(done.status(), StatusCode::NO_CONTENT);
    assert!(works(&host, &mine).await, "the caller's session goes on");
    assert_eq!(refresh(&host, &my_refresh).await.status(), StatusCode::OK);
    assert!(!works(&host, &elsewhere).await, "every other session ends");
    assert_invalid_grant(refresh(&host, &elsewhere_refresh).await).await;
    let old = post_token(&host, &[("username", EMAIL), ("password", PASSWORD)]).await;
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED, "the old password stops working");
    let new = post_token(&host, &[("username", EMAIL), ("password", "a brand new passphrase 7")]).await;
    assert_eq!(new.status(), StatusCode::OK);
    // A wrong current password is a failed login: it counts against the throttle.
    for _ in 0..3 {
        assert_eq!(change("wrong again", "another passphrase 8").await.unwrap().status(), StatusCode::BAD_REQUEST);
    }
    assert_eq!(change("wrong again", "another passphrase 8").await.unwrap().status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn sessions_end_when_idle_and_at_their_maximum_age() {
    let idle =
        TestHost::spawn_with(HostOptions { args: vec!["--session-idle".into(), "2".into()], ..Default::default() });
    register(&idle, EMAIL, PASSWORD).await;
    let (_, token) = pair(&idle).await;
    let (_, token) = tokens(refresh(&idle, &token).await).await;
    // Time passing is what is tested here: three seconds without a refresh.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_invalid_grant(refresh(&idle, &token).await).await;

    let aged =
        TestHost::spawn_with(HostOptions { args: vec!["--session-max-age".into(), "3".into()], ..Default::default() });
    register(&aged, EMAIL, PASSWORD).await;
    let response = post_token(&aged, &[("username", EMAIL), ("password", PASSWORD)]).await;
    let body: Value = response.json().await.unwrap();
    assert!(body["refresh_expires_in"].as_i64().unwrap() <= 3, "{body}");
    let mut token = body["refresh_token"].as_str().unwrap().to_owned();
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_millis(1500) {
        token = tokens(refresh(&aged, &token).await).await.1;
    }
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_invalid_grant(refresh(&aged, &token).await).await;
}

#[tokio::test]
async fn the_database_holds_no_refresh_token() {
    let dir = tempfile::tempdir().unwrap();
    let database = loom_e2e::TestDatabase::fresh(loom_e2e::Backend::Sqlite, dir.path());
    let host = TestHost::spawn_in(dir.path(), HostOptions { database: Some(database), ..Default::default() });
    register(&host, EMAIL, PASSWORD).await;
    let mut issued = Vec::new();
    let (_, mut token) = pair(&host).await;
    for _ in 0..3 {
        issued.push(token.clone());
        token = tokens(refresh(&host, &token).await).await.1;
    }
    issued.push(token);
    let mut bytes = Vec::new();
    for name in ["loom-auth.db", "loom-auth.db-wal"] {
        bytes.extend(std::fs::read(dir.path().join(name)).unwrap_or_default());
    }
    for token in &issued {
        // `loomrt_<session>.<generation>.<tag>`: the session id is no secret (every access token
        // names it); the tag is what makes the token, and it is nowhere, whole or in part.
        let tag = token.rsplit('.').next().unwrap();
        assert_eq!(tag.len(), 43, "{token}");
        for needle in [token.as_str(), tag, &tag[..16], &tag[27..]] {
            assert!(!bytes.windows(needle.len()).any(|w| w == needle.as_bytes()), "{needle} is in the database");
        }
    }
}
