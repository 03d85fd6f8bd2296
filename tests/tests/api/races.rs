//! Logins racing what should end them: a password change or a deactivation that commits while
//! a login with the old credentials is being checked starts no session that outlives it.

use loom_e2e::{HostOptions, TestHost, client, register};
use reqwest::StatusCode;
use serde_json::json;

use crate::PASSWORD;
use crate::sessions::{EMAIL, assert_invalid_grant, pair, refresh, sessions, tokens, works};

/// Logins with `password` in `parallel` loops until one is refused, after `changed` (a password
/// change or a deactivation) runs once the first few succeeded: every pair the loops got.
async fn logins_racing(host: &TestHost, parallel: usize, changed: impl AsyncFnOnce()) -> Vec<(String, String)> {
    let (first, mut succeeded) = tokio::sync::mpsc::channel::<()>(64);
    let mut loops = tokio::task::JoinSet::new();
    for _ in 0..parallel {
        let (url, first) = (host.url("/token"), first.clone());
        loops.spawn(async move {
            let mut got = Vec::new();
            // Bounded: the change comes within a few logins.
            for _ in 0..200 {
                let form = [("username", EMAIL), ("password", PASSWORD)];
                let response = client().post(&url).form(&form).send().await.unwrap();
                if response.status() != StatusCode::OK {
                    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
                    break;
                }
                got.push(tokens(response).await);
                let _ = first.try_send(());
            }
            got
        });
    }
    for _ in 0..parallel {
        succeeded.recv().await.expect("the loops log in");
    }
    changed().await;
    let mut got = Vec::new();
    while let Some(pairs) = loops.join_next().await {
        got.extend(pairs.unwrap());
    }
    got
}

/// Every session `got` holds has ended: its access token is refused, its refresh token too.
async fn all_ended(host: &TestHost, got: &[(String, String)]) {
    assert!(got.len() >= 3, "the loops logged in: {}", got.len());
    for (access, refresh_token) in got {
        assert!(!works(host, access).await, "a session the loops started outlived the change");
        assert_invalid_grant(refresh(host, refresh_token).await).await;
    }
}

/// A host with Ada registered, whose throttle lets the loops' refused logins through.
async fn registered() -> TestHost {
    let host = TestHost::spawn_with(HostOptions {
        args: vec!["--login-max-failures".into(), "1000".into()],
        ..Default::default()
    });
    register(&host, EMAIL, PASSWORD).await;
    host
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_checked_while_the_password_changes_starts_no_session_that_outlives_it() {
    let host = registered().await;
    let (changer, _) = pair(&host).await;
    let got = logins_racing(&host, 3, async || {
        let body = json!({"current_password": PASSWORD, "new_password": "a new passphrase, 2026"});
        let response = client().post(host.url("/users/me/password")).bearer_auth(&changer).json(&body).send();
        assert_eq!(response.await.unwrap().status(), StatusCode::NO_CONTENT);
    })
    .await;
    all_ended(&host, &got).await;
    assert_eq!(sessions(&host, &changer).await.len(), 1, "only the caller's session goes on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_checked_while_the_account_is_deactivated_starts_no_session_that_comes_back() {
    let host = registered().await;
    let admin = |verb: &'static str| {
        let mut command = host.admin_command();
        command.args(["users", verb, EMAIL]);
        async move {
            let outcome =
                tokio::task::spawn_blocking(move || loom_e2e::run_within(command, std::time::Duration::from_secs(60)));
            let outcome = outcome.await.unwrap();
            assert_eq!(outcome.code, Some(0), "{outcome:?}");
        }
    };
    let got = logins_racing(&host, 3, async || admin("deactivate").await).await;
    // Let back in: nothing the loops started comes back with the account.
    admin("activate").await;
    all_ended(&host, &got).await;
}
