//! Personal access tokens: made with the password by a password login, shown once, used as
//! bearer or exchanged (RFC 8693) for an access token other services verify by JWKS, refused
//! what only a password login may do, revoked at once on every host, and explicit when expired.

use loom_e2e::{HostOptions, TestHost, client, register};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::sessions::{EMAIL, pair};
use crate::{PASSWORD, bearer, challenge, detail, me, post_token};

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";

fn registered_host(args: &[&str]) -> TestHost {
    TestHost::spawn_with(HostOptions { args: args.iter().map(|a| (*a).to_owned()).collect(), ..Default::default() })
}

async fn create(host: &TestHost, access: &str, body: Value) -> reqwest::Response {
    client().post(host.url("/users/me/tokens")).bearer_auth(access).json(&body).send().await.unwrap()
}

/// Makes a token named `name` for Ada: (id, token).
pub(crate) async fn made(host: &TestHost, access: &str, name: &str) -> (String, String) {
    let response = create(host, access, json!({"name": name, "password": PASSWORD})).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    (body["id"].as_str().unwrap().to_owned(), body["token"].as_str().unwrap().to_owned())
}

async fn list(host: &TestHost, access: &str) -> reqwest::Response {
    client().get(host.url("/users/me/tokens")).bearer_auth(access).send().await.unwrap()
}

pub(crate) async fn exchange(host: &TestHost, token: &str) -> reqwest::Response {
    post_token(host, &[("grant_type", EXCHANGE), ("subject_token", token), ("subject_token_type", ACCESS_TOKEN)]).await
}

/// `loom_pat_` + 38 base62 characters: the README's pattern for secret scanners.
fn looks_like_a_pat(token: &str) -> bool {
    token.len() == 47
        && token.starts_with("loom_pat_")
        && token["loom_pat_".len()..].bytes().all(|b| b.is_ascii_alphanumeric())
}

#[tokio::test]
async fn a_token_needs_the_password_is_shown_once_and_is_listed_without_its_secret() {
    let host = registered_host(&["--pat-max-per-user", "2", "--login-max-failures", "3"]);
    register(&host, EMAIL, PASSWORD).await;
    let (access, _) = pair(&host).await;

    let missing = create(&host, &access, json!({"name": "ci"})).await;
    assert_eq!(missing.status(), StatusCode::UNPROCESSABLE_ENTITY);
    for (days, why) in
        [(json!(0), "none"), (json!(367), "past the maximum"), (json!("30"), "text"), (json!(1.5), "half")]
    {
        let response =
            create(&host, &access, json!({"name": "ci", "password": PASSWORD, "expires_in_days": days})).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{why}");
    }
    for name in ["", "   ", &"x".repeat(65), "a\u{7}b", "ci\u{200b}", "ci\u{202e}x", "\u{ad}"] {
        let response = create(&host, &access, json!({"name": name, "password": PASSWORD})).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{name:?}");
        assert!(detail(response).await.contains("name must be"));
    }

    let response = create(&host, &access, json!({"name": "ci", "password": "not the password"})).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(detail(response).await, "The password is incorrect");

    let response = create(&host, &access, json!({"name": "ci", "password": PASSWORD, "expires_in_days": 7})).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    let token = created["token"].as_str().unwrap();
    assert!(looks_like_a_pat(token), "{created}");
    assert_eq!(created["name"], "ci");
    assert!(created["last_used_at"].is_null());
    let (made_at, expires) = (created["created_at"].as_str().unwrap(), created["expires_at"].as_str().unwrap());
    assert!(made_at.ends_with('Z') && expires > made_at, "{created}");

    let taken = create(&host, &access, json!({"name": " ci ", "password": PASSWORD})).await;
    assert_eq!(taken.status(), StatusCode::CONFLICT);
    made(&host, &access, "deploy").await;
    let full = create(&host, &access, json!({"name": "third", "password": PASSWORD})).await;
    assert_eq!(full.status(), StatusCode::CONFLICT);
    assert!(detail(full).await.contains("holds 2 live tokens"));

    let listed: Value = list(&host, &access).await.json().await.unwrap();
    let names: Vec<&str> = listed.as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["deploy", "ci"], "newest first");
    let ci = &listed[1];
    assert_eq!(ci["id"], created["id"]);
    assert!(token.starts_with(ci["prefix"].as_str().unwrap()) && ci["prefix"].as_str().unwrap().len() == 13);
    assert!(!listed.to_string().contains(&token["loom_pat_".len()..]), "no secret listed: {listed}");

    // Wrong passwords count against the login throttle: past three failures in the window, refused.
    for _ in 0..3 {
        let wrong = create(&host, &access, json!({"name": "x", "password": "wrong"})).await;
        assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    }
    let throttled = create(&host, &access, json!({"name": "x", "password": "wrong"})).await;
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_token_is_a_bearer_and_is_exchanged_for_an_access_token_that_jwks_verifies() {
    let public = "https://auth.example.com";
    let host = registered_host(&["--public-url", public]);
    register(&host, EMAIL, PASSWORD).await;
    let (access, _) = pair(&host).await;
    let response = create(&host, &access, json!({"name": "ci", "password": PASSWORD, "expires_in_days": 1})).await;
    let created: Value = response.json().await.unwrap();
    let (id, token) = (created["id"].as_str().unwrap(), created["token"].as_str().unwrap());

    let response = me(&host, bearer(token)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap()["email"], EMAIL);

    let response = exchange(&host, token).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["issued_token_type"], ACCESS_TOKEN);
    assert_eq!(body["token_type"], "Bearer");
    assert!(body.get("refresh_token").is_none(), "{body}");
    let jwt = body["access_token"].as_str().unwrap();
    assert!(body["expires_in"].as_i64().unwrap() <= 1800);

    // A service holding nothing but the JWKS checks it with a plain JWT library.
    use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
    let set: JwkSet = client().get(host.url("/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();
    let kid = jsonwebtoken::decode_header(jwt).unwrap().kid.unwrap();
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&["loom"]);
    validation.set_issuer(&[public]);
    let key = DecodingKey::from_jwk(set.find(&kid).unwrap()).unwrap();
    let claims = jsonwebtoken::decode::<Value>(jwt, &key, &validation).expect("verified by JWKS").claims;
    assert_eq!(claims["sid"], id, "it names its token as access tokens name their session");
    assert_eq!(me(&host, bearer(jwt)).await.status(), StatusCode::OK);
    // A machine sees which token it holds and how long it has left; a password login holds none.
    for caller in [token, jwt] {
        let held: Value = client()
            .get(host.url("/users/me/tokens/current"))
            .bearer_auth(caller)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!((&held["id"], &held["name"]), (&json!(id), &json!("ci")), "{held}");
        assert_eq!(held["expires_at"], created["expires_at"]);
    }
    let none = client().get(host.url("/users/me/tokens/current")).bearer_auth(&access).send().await.unwrap();
    assert_eq!(none.status(), StatusCode::NOT_FOUND);

    let metadata: Value =
        client().get(host.url("/.well-known/oauth-authorization-server")).send().await.unwrap().json().await.unwrap();
    assert!(metadata["grant_types_supported"].as_array().unwrap().contains(&json!(EXCHANGE)), "{metadata}");

    // An exchanged token never outlives its personal access token.
    host.sql(&format!("UPDATE personal_tokens SET expires_at = expires_at - 86400 + 60 WHERE id = '{id}'"));
    let body: Value = exchange(&host, token).await.json().await.unwrap();
    let left = body["expires_in"].as_i64().unwrap();
    assert!((1..=60).contains(&left), "expires_in {left}: {body}");

    let wrong_type =
        post_token(&host, &[("grant_type", EXCHANGE), ("subject_token", token), ("subject_token_type", "jwt")]).await;
    assert_eq!(wrong_type.status(), StatusCode::BAD_REQUEST);
    let body: Value = wrong_type.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request", "{body}");
}

#[tokio::test]
async fn a_one_character_typo_is_refused_before_any_lookup() {
    let host = registered_host(&["--metrics-bind", "127.0.0.1:0"]);
    register(&host, EMAIL, PASSWORD).await;
    let (access, _) = pair(&host).await;
    let (_, token) = made(&host, &access, "ci").await;
    let mut typo = token.clone().into_bytes();
    let at = typo.len() - 10;
    typo[at] = if typo[at] == b'a' { b'b' } else { b'a' };
    let typo = String::from_utf8(typo).unwrap();

    let response = me(&host, bearer(&typo)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(challenge(&response).unwrap().contains(r#"error="invalid_token""#));
    assert!(detail(response).await.starts_with("Not a valid personal access token"));
    let refused = exchange(&host, &typo).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert_eq!(me(&host, bearer(&token)).await.status(), StatusCode::OK);

    let metrics = client().get(host.metrics_url()).send().await.unwrap().text().await.unwrap();
    let count = |outcome: &str| {
        let needle = format!("loom_pat_checks_total{{outcome=\"{outcome}\"}} ");
        metrics.lines().find_map(|l| l.strip_prefix(&needle)).map_or(0, |n| n.parse::<u64>().unwrap())
    };
    assert_eq!((count("malformed"), count("unknown"), count("ok")), (2, 0, 1), "{metrics}");
}

#[tokio::test]
async fn a_token_and_the_tokens_exchanged_from_it_cannot_manage_credentials() {
    let host = registered_host(&[]);
    register(&host, EMAIL, PASSWORD).await;
    let (access, _) = pair(&host).await;
    let (id, token) = made(&host, &access, "ci").await;
    let exchanged: Value = exchange(&host, &token).await.json().await.unwrap();
    let exchanged = exchanged["access_token"].as_str().unwrap().to_owned();
    for caller in [&token, &exchanged] {
        let http = client();
        let attempts = [
            http.post(host.url("/users/me/tokens")).json(&json!({"name": "more", "password": PASSWORD})),
            http.get(host.url("/users/me/tokens")),
            http.delete(host.url(&format!("/users/me/tokens/{id}"))),
            http.post(host.url("/users/me/password"))
                .json(&json!({"current_password": PASSWORD, "new_password": "another passphrase, 2027"})),
            http.get(host.url("/sessions")),
            http.delete(host.url("/sessions/0123456789abcdef0123456789abcdef")),
            http.post(host.url("/logout")),
        ];
        for attempt in attempts {
            let response = attempt.bearer_auth(caller).send().await.unwrap();
            let what = response.url().path().to_owned();
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{what}");
            assert!(detail(response).await.contains("needs a password login"), "{what}");
        }
    }
    // The token still works, and the password login manages it.
    assert_eq!(me(&host, bearer(&token)).await.status(), StatusCode::OK);
    assert_eq!(list(&host, &access).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn revoking_ends_the_token_and_its_exchanged_tokens_on_every_host() {
    // Two hosts on one data directory (one master key) and one database.
    let dir = tempfile::tempdir().unwrap();
    let one = TestHost::spawn_in(dir.path(), HostOptions::default());
    let two = TestHost::spawn_in(dir.path(), HostOptions { database: Some(one.database()), ..Default::default() });
    register(&one, EMAIL, PASSWORD).await;
    register(&one, "bob@example.com", PASSWORD).await;
    let (access, _) = pair(&one).await;
    let (id, token) = made(&one, &access, "ci").await;
    let exchanged: Value = exchange(&two, &token).await.json().await.unwrap();
    let exchanged = exchanged["access_token"].as_str().unwrap().to_owned();
    assert_eq!(me(&two, bearer(&exchanged)).await.status(), StatusCode::OK);
    assert_eq!(me(&two, bearer(&token)).await.status(), StatusCode::OK);

    // Bob cannot revoke Ada's token: it is as unknown to him as one that never was.
    let bob: Value =
        post_token(&one, &[("username", "bob@example.com"), ("password", PASSWORD)]).await.json().await.unwrap();
    let bob = bob["access_token"].as_str().unwrap();
    let path = format!("/users/me/tokens/{id}");
    let theirs = client().delete(one.url(&path)).bearer_auth(bob).send().await.unwrap();
    assert_eq!(theirs.status(), StatusCode::NOT_FOUND);

    let revoked = client().delete(one.url(&path)).bearer_auth(&access).send().await.unwrap();
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    let response = me(&two, bearer(&token)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(detail(response).await, "The personal access token 'ci' was revoked");
    assert_eq!(me(&two, bearer(&exchanged)).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(exchange(&two, &token).await.status(), StatusCode::BAD_REQUEST);
    let again = client().delete(one.url(&path)).bearer_auth(&access).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    assert!(list(&one, &access).await.json::<Value>().await.unwrap().as_array().unwrap().is_empty());
}

#[tokio::test]
async fn a_password_change_and_a_global_logout_keep_tokens_and_a_deactivation_ends_them() {
    let host = registered_host(&[]);
    register(&host, EMAIL, PASSWORD).await;
    let (access, _) = pair(&host).await;
    let (_, token) = made(&host, &access, "ci").await;
    let exchanged: Value = exchange(&host, &token).await.json().await.unwrap();
    let exchanged = exchanged["access_token"].as_str().unwrap().to_owned();

    let new_password = "another passphrase, 2027";
    let body = json!({"current_password": PASSWORD, "new_password": new_password});
    let changed = client().post(host.url("/users/me/password")).bearer_auth(&access).json(&body).send().await.unwrap();
    assert_eq!(changed.status(), StatusCode::NO_CONTENT);
    let logout = client().post(host.url("/logout?scope=global")).bearer_auth(&access).send().await.unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    assert_eq!(me(&host, bearer(&access)).await.status(), StatusCode::UNAUTHORIZED, "sessions end");
    assert_eq!(me(&host, bearer(&token)).await.status(), StatusCode::OK, "machines keep working");
    assert_eq!(me(&host, bearer(&exchanged)).await.status(), StatusCode::OK);

    let admin = |verb: &str| {
        let mut command = host.admin_command();
        command.args(["users", verb, EMAIL]);
        let outcome = loom_e2e::run_within(command, std::time::Duration::from_secs(60));
        assert_eq!(outcome.code, Some(0), "{outcome:?}");
        outcome
    };
    let off = admin("deactivate");
    assert!(off.stdout.contains("and 1 personal access token)"), "{off:?}");
    let response = me(&host, bearer(&token)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(detail(response).await, "The personal access token 'ci' belongs to a deactivated account");
    admin("activate");
    let response = me(&host, bearer(&token)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "a reactivation brings no token back");
    assert_eq!(detail(response).await, "The personal access token 'ci' was revoked");
    assert_eq!(me(&host, bearer(&exchanged)).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_expired_token_says_which_and_when_and_gives_its_name_up() {
    let host = registered_host(&[]);
    register(&host, EMAIL, PASSWORD).await;
    let (access, _) = pair(&host).await;
    let (id, token) = made(&host, &access, "ci").await;
    // 2027-01-02T00:00:00Z, then past: a test-only way to an expired row.
    host.sql(&format!("UPDATE personal_tokens SET expires_at = 1798848000 WHERE id = '{id}'"));
    host.sql(&format!("UPDATE personal_tokens SET expires_at = 1000 WHERE id = '{id}'"));
    let response = me(&host, bearer(&token)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let expected = "The personal access token 'ci' expired on 1970-01-01";
    assert_eq!(
        challenge(&response),
        Some(format!(r#"Bearer error="invalid_token", error_description="{expected}""#).as_str())
    );
    assert_eq!(detail(response).await, expected);
    let refused = exchange(&host, &token).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert_eq!(detail(refused).await, expected);
    assert!(list(&host, &access).await.json::<Value>().await.unwrap().as_array().unwrap().is_empty());
    let (_, renewed) = made(&host, &access, "ci").await;
    assert_eq!(me(&host, bearer(&renewed)).await.status(), StatusCode::OK);
    let response = me(&host, bearer(&token)).await;
    assert_eq!(detail(response).await, expected, "the old one still says it expired");
}

#[tokio::test]
async fn the_database_holds_no_usable_token_and_notes_uses_at_most_once_a_minute() {
    let host = registered_host(&[]);
    register(&host, EMAIL, PASSWORD).await;
    let (access, _) = pair(&host).await;
    let (id, token) = made(&host, &access, "ci").await;
    let secret = &token["loom_pat_".len() + 4..];
    let url = host.database().url;
    let stored = loom_e2e::query_one(&url, "SELECT id || name || digest || shown FROM personal_tokens");
    assert!(!stored.contains(secret), "{stored}");
    if url.starts_with("sqlite:") {
        for entry in std::fs::read_dir(&host.data_dir).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap_or_default();
            assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()), "the token at rest");
        }
    }

    let used_at = || {
        loom_e2e::query_one(
            &url,
            &format!("SELECT COALESCE(CAST(last_used_at AS TEXT), 'never') FROM personal_tokens WHERE id = '{id}'"),
        )
    };
    assert_eq!(used_at(), "never");
    assert_eq!(me(&host, bearer(&token)).await.status(), StatusCode::OK);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while used_at() == "never" {
        assert!(std::time::Instant::now() < deadline, "the use was never noted");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Moved back a little: the next use, within the minute, writes nothing.
    host.sql(&format!("UPDATE personal_tokens SET last_used_at = last_used_at - 30 WHERE id = '{id}'"));
    let noted = used_at();
    for _ in 0..5 {
        assert_eq!(me(&host, bearer(&token)).await.status(), StatusCode::OK);
    }
    let listed: Value = list(&host, &access).await.json().await.unwrap();
    assert_eq!(listed[0]["last_used_from"], "127.0.0.1", "{listed}");
    assert_eq!(used_at(), noted, "no write within a minute of the last");
}

#[tokio::test]
async fn the_revocation_endpoint_ends_a_token_given_it_or_an_access_token_exchanged_from_it() {
    let host = registered_host(&[]);
    register(&host, EMAIL, PASSWORD).await;
    let (access, _) = pair(&host).await;
    let revoke = |token: String, hint: &'static str| {
        let url = host.url("/revoke");
        async move {
            let form = [("token", token.as_str()), ("token_type_hint", hint)];
            client().post(url).form(&form).send().await.unwrap().status()
        }
    };
    // An access token traded for a token ends that token (RFC 7009: the grant it came from).
    let (_, first) = made(&host, &access, "first").await;
    let exchanged: Value = exchange(&host, &first).await.json().await.unwrap();
    let exchanged = exchanged["access_token"].as_str().unwrap().to_owned();
    assert_eq!(revoke(exchanged.clone(), "access_token").await, StatusCode::OK);
    assert_eq!(me(&host, bearer(&exchanged)).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(detail(me(&host, bearer(&first)).await).await, "The personal access token 'first' was revoked");
    // A token given itself ends (whoever finds a leaked one may end it), whatever the hint.
    let (_, second) = made(&host, &access, "second").await;
    assert_eq!(revoke(second.clone(), "refresh_token").await, StatusCode::OK);
    assert_eq!(detail(me(&host, bearer(&second)).await).await, "The personal access token 'second' was revoked");
    // A typo or an unknown token: nothing to do, as RFC 7009 answers.
    assert_eq!(revoke("loom_pat_nothing".into(), "access_token").await, StatusCode::OK);
    assert_eq!(me(&host, bearer(&access)).await.status(), StatusCode::OK, "the password login goes on");
}
