//! The operator's policy over the API, on each backend: the shipped policies deciding
//! registrations and logins (also of accounts made before the policy, and of their personal
//! access tokens), and adding claims another service verifies with the JWKS alone; the Python
//! policy served and deciding.

use loom_e2e::policy::{host_with_policy, python, shipped, verified_claims};
use loom_e2e::{HostOptions, TestHost, client, health, query_one, register};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::pats::{exchange, made};
use crate::sessions::{refresh, tokens};
use crate::{PASSWORD, detail, post_token, post_user};

/// A login's access and refresh tokens.
async fn log_in(host: &TestHost, email: &str) -> (String, String) {
    let response = post_token(host, &[("username", email), ("password", PASSWORD)]).await;
    assert_eq!(response.status(), StatusCode::OK, "logging in as {email}");
    tokens(response).await
}

/// A refusal at the token endpoint: `403`, RFC 6749's `access_denied`, the policy's reason.
async fn refused_login(host: &TestHost, response: reqwest::Response) -> String {
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "{}", host.logs());
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "access_denied", "{body}");
    body["detail"].as_str().unwrap().to_owned()
}

fn sessions_of(host: &TestHost, id: i64) -> String {
    query_one(&host.database_url, &format!("SELECT CAST(COUNT(*) AS TEXT) FROM sessions WHERE user_id = {id}"))
}

#[tokio::test]
async fn email_domains_lets_in_the_allowed_domains_only() {
    // Accounts made before the policy, one with a personal access token: their logins are
    // decided by the policy too.
    let before = TestHost::spawn();
    let eve = register(&before, "eve@contractors.acme.com", PASSWORD).await["id"].as_i64().unwrap();
    let bob = register(&before, "bob@example.com", PASSWORD).await["id"].as_i64().unwrap();
    let (bob_access, bob_refresh) = log_in(&before, "bob@example.com").await;
    let (_, bob_pat) = made(&before, &bob_access, "ci").await;
    let bob_sessions = sessions_of(&before, bob);

    let dir = tempfile::tempdir().unwrap();
    let settings = json!({"allow_domains": ["acme.com", "*.acme.com"], "deny_domains": ["contractors.acme.com"]});
    let master_key = before.data_dir.join("master-key").to_str().unwrap().to_owned();
    let options = HostOptions {
        database: Some(before.database()),
        args: vec!["--master-key-file".into(), master_key],
        ..Default::default()
    };
    let (host, _) = host_with_policy(dir.path(), &shipped("email-domains"), &settings, options);

    for allowed in ["ada@acme.com", "grace@lab.acme.com"] {
        let response = post_user(&host, json!({"email": allowed, "password": PASSWORD})).await;
        assert_eq!(response.status(), StatusCode::CREATED, "{allowed}");
    }
    let refused = post_user(&host, json!({"email": "mallory@example.com", "password": PASSWORD})).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(detail(refused).await, "only accounts at acme.com, *.acme.com can use this service");
    let refused = post_user(&host, json!({"email": "zed@contractors.acme.com", "password": PASSWORD})).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(detail(refused).await, "accounts at contractors.acme.com are not accepted here");
    // A refusal says nothing about whether the address has an account.
    let taken = post_user(&host, json!({"email": "bob@example.com", "password": PASSWORD})).await;
    assert_eq!(taken.status(), StatusCode::FORBIDDEN, "refused before the taken check");

    log_in(&host, "ada@acme.com").await;
    let denied = post_token(&host, &[("username", "eve@contractors.acme.com"), ("password", PASSWORD)]).await;
    assert_eq!(refused_login(&host, denied).await, "accounts at contractors.acme.com are not accepted here");
    let denied = post_token(&host, &[("username", "bob@example.com"), ("password", PASSWORD)]).await;
    assert!(refused_login(&host, denied).await.starts_with("only accounts at"));
    // The wrong password is still the wrong password (the policy is asked only after it).
    let wrong = post_token(&host, &[("username", "bob@example.com"), ("password", "not the password")]).await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    // A session from before the policy cannot renew.
    let denied = refresh(&host, &bob_refresh).await;
    assert!(refused_login(&host, denied).await.starts_with("only accounts at"));
    // A personal access token is a login of its own, exchanged or used as a bearer token.
    assert!(refused_login(&host, exchange(&host, &bob_pat).await).await.starts_with("only accounts at"));
    let as_bearer = client().get(host.url("/users/me/")).bearer_auth(&bob_pat).send().await.unwrap();
    assert_eq!(as_bearer.status(), StatusCode::FORBIDDEN);
    assert!(detail(as_bearer).await.starts_with("only accounts at"));
    // No session was started for a refused login.
    assert_eq!(sessions_of(&host, eve), "0");
    assert_eq!(sessions_of(&host, bob), bob_sessions);
    host.wait_for_log("policy.denied");
}

#[tokio::test]
async fn invite_only_lets_the_invited_register_and_everyone_log_in() {
    let dir = tempfile::tempdir().unwrap();
    let settings = json!({"invited": ["ada@acme.com", "*@lab.acme.com"]});
    let (host, _) = host_with_policy(dir.path(), &shipped("invite-only"), &settings, HostOptions::default());
    for invited in ["ada@acme.com", "grace@lab.acme.com", "Linus@LAB.acme.com"] {
        let response = post_user(&host, json!({"email": invited, "password": PASSWORD})).await;
        assert_eq!(response.status(), StatusCode::CREATED, "{invited}");
    }
    for stranger in ["bob@acme.com", "ada@acme.com.evil.example", "eve@evil.lab.acme.com"] {
        let response = post_user(&host, json!({"email": stranger, "password": PASSWORD})).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{stranger}");
        assert_eq!(detail(response).await, "registration is by invitation only: ask an administrator to invite you");
    }
    log_in(&host, "grace@lab.acme.com").await;
}

#[tokio::test]
async fn org_claims_reach_every_access_token_and_verify_with_the_jwks() {
    let dir = tempfile::tempdir().unwrap();
    let settings = json!({"orgs": {"acme.com": "acme"}});
    let (host, served) = host_with_policy(dir.path(), &shipped("org-claims"), &settings, HostOptions::default());
    let policy = health(&host).await["policy"].clone();
    assert_eq!(policy["wit_package"], "loom:policy@0.1.0");
    assert_eq!(policy["sha256"], loom_e2e::sha256(&served));
    assert_eq!(policy["deadline_ms"], loom_e2e::policy::TEST_DEADLINE_MS.parse::<u64>().unwrap());
    let ada = register(&host, "ada@acme.com", PASSWORD).await["id"].as_i64().unwrap();
    register(&host, "bob@example.com", PASSWORD).await;

    let (access, refresh_token) = log_in(&host, "ada@acme.com").await;
    let claims = verified_claims(&host, &access).await;
    assert_eq!(claims["org"], "acme", "{claims}");
    assert_eq!(claims["sub"], ada.to_string(), "the host's claims stand");
    assert_eq!(claims["amr"], json!(["pwd"]));
    // A refresh, and a personal access token exchanged, carry it too.
    let refreshed: Value = refresh(&host, &refresh_token).await.json().await.unwrap();
    let claims =
        verified_claims(&host, refreshed["access_token"].as_str().unwrap_or_else(|| panic!("{refreshed}"))).await;
    assert_eq!(claims["org"], "acme", "{claims}");
    let (_, pat) = made(&host, &access, "ci").await;
    let exchanged: Value = exchange(&host, &pat).await.json().await.unwrap();
    let claims =
        verified_claims(&host, exchanged["access_token"].as_str().unwrap_or_else(|| panic!("{exchanged}"))).await;
    assert_eq!(claims["org"], "acme", "{claims}");
    // And the token works where tokens are used.
    let me = client().get(host.url("/users/me/")).bearer_auth(&access).send().await.unwrap();
    assert_eq!(me.status(), StatusCode::OK);

    let (access, _) = log_in(&host, "bob@example.com").await;
    let claims = verified_claims(&host, &access).await;
    assert!(claims.get("org").is_none(), "no org for a domain not listed: {claims}");
}

#[tokio::test]
async fn a_policy_written_in_python_is_served_and_decides() {
    let Some(plans) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let settings =
        json!({"reserved_usernames": ["admin", "root"], "plans": {"ada@acme.com": "team"}, "default_plan": "free"});
    let (host, _) = host_with_policy(dir.path(), &plans, &settings, HostOptions::default());
    let reserved = post_user(&host, json!({"email": "eve@acme.com", "username": "Admin", "password": PASSWORD})).await;
    assert_eq!(reserved.status(), StatusCode::FORBIDDEN);
    assert_eq!(detail(reserved).await, "the username Admin is reserved: choose another");
    let created = post_user(&host, json!({"email": "ada@acme.com", "username": "ada", "password": PASSWORD})).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    register(&host, "bob@example.com", PASSWORD).await;
    let (access, _) = log_in(&host, "ada").await;
    assert_eq!(verified_claims(&host, &access).await["plan"], "team");
    let (access, _) = log_in(&host, "bob@example.com").await;
    assert_eq!(verified_claims(&host, &access).await["plan"], "free");
}

#[tokio::test]
async fn without_a_policy_healthz_says_so_and_nothing_is_added() {
    let host = TestHost::spawn();
    assert_eq!(health(&host).await["policy"], Value::Null);
    register(&host, "ada@example.com", PASSWORD).await;
    let (access, _) = log_in(&host, "ada@example.com").await;
    let claims = verified_claims(&host, &access).await;
    let mut names: Vec<&str> = claims.as_object().unwrap().keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(names, ["amr", "aud", "client_id", "exp", "iat", "iss", "jti", "sid", "sub"]);
}
