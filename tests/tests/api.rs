//! The HTTP API end to end: the real host, the real component, a real SQLite file.

use std::time::{Duration, Instant};

use loom_e2e::{HostOptions, TestHost, client, login, register};
use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, HeaderValue, WWW_AUTHENTICATE};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";

async fn detail(response: reqwest::Response) -> String {
    let body: Value = response.json().await.expect("error bodies are JSON");
    body["detail"].as_str().unwrap_or_else(|| panic!("no string detail in {body}")).to_owned()
}

fn challenge(response: &reqwest::Response) -> Option<&str> {
    response.headers().get(WWW_AUTHENTICATE).map(|v| v.to_str().unwrap())
}

async fn me(host: &TestHost, authorization: Option<HeaderValue>) -> reqwest::Response {
    let mut request = client().get(host.url("/users/me/"));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    request.send().await.unwrap()
}

fn bearer(token: &str) -> Option<HeaderValue> {
    Some(HeaderValue::from_str(&format!("Bearer {token}")).unwrap())
}

async fn post_user(host: &TestHost, body: Value) -> reqwest::Response {
    client().post(host.url("/users/")).json(&body).send().await.unwrap()
}

async fn post_token(host: &TestHost, form: &[(&str, &str)]) -> reqwest::Response {
    client().post(host.url("/token")).form(form).send().await.unwrap()
}

// ---- POST /users/ ----

#[tokio::test]
async fn registration_returns_the_account_without_secrets() {
    let host = TestHost::spawn();
    let response = post_user(&host, json!({ "email": "ada@example.com", "password": PASSWORD })).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({ "id": body["id"], "email": "ada@example.com", "is_active": true }));
    assert!(body["id"].as_i64().unwrap() > 0);
}

#[tokio::test]
async fn duplicate_emails_are_refused_case_insensitively() {
    let host = TestHost::spawn();
    register(&host, "Grace@Example.com", PASSWORD).await;
    for email in ["Grace@Example.com", "grace@example.com", "GRACE@EXAMPLE.COM"] {
        let response = post_user(&host, json!({ "email": email, "password": PASSWORD })).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{email}");
        assert_eq!(detail(response).await, "Email already registered");
    }
}

#[tokio::test]
async fn invalid_registrations_are_422_with_a_detail() {
    let host = TestHost::spawn();
    let long = "x".repeat(1025);
    for body in [
        json!({ "email": "not-an-email", "password": PASSWORD }),
        json!({ "email": "ada@localhost", "password": PASSWORD }),
        json!({ "email": "", "password": PASSWORD }),
        json!({ "email": "Ada <ada@example.com>", "password": PASSWORD }),
        json!({ "email": 42, "password": PASSWORD }),
        json!({ "password": PASSWORD }),
        json!({ "email": "ada@example.com" }),
        json!({ "email": "ada@example.com", "password": "seven77" }),
        json!({ "email": "ada@example.com", "password": long }),
        json!(["ada@example.com", PASSWORD]),
    ] {
        let response = post_user(&host, body.clone()).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(!detail(response).await.is_empty());
    }
    for (content_type, raw) in [("application/json", "{not json"), ("text/plain", "{}"), ("application/json", "")] {
        let response =
            client().post(host.url("/users/")).header("content-type", content_type).body(raw).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{content_type} {raw:?}");
        assert!(!detail(response).await.is_empty());
    }
}

#[tokio::test]
async fn passwords_count_characters_and_any_unicode_is_accepted() {
    let host = TestHost::spawn();
    // Eight characters, 32 bytes: long enough.
    register(&host, "keys@example.com", "🔑🔑🔑🔑🔑🔑🔑🔑").await;
    login(&host, "keys@example.com", "🔑🔑🔑🔑🔑🔑🔑🔑").await;
    // Seven characters but more than eight bytes: too short.
    let response = post_user(&host, json!({ "email": "short@example.com", "password": "ééééééé" })).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // Exactly 1024 bytes is the most accepted.
    register(&host, "long@example.com", &"p".repeat(1024)).await;
}

#[tokio::test]
async fn bodies_over_64_kib_are_413() {
    let host = TestHost::spawn();
    let huge = json!({ "email": "big@example.com", "password": "x".repeat(70 * 1024) });
    let response = post_user(&host, huge).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(detail(response).await.contains("64 KiB"));
    let form = client()
        .post(host.url("/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("username=a%40b.com&password={}", "x".repeat(70 * 1024)))
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn twenty_concurrent_registrations_of_one_email_create_one_account() {
    let host = TestHost::spawn();
    let attempts: Vec<_> = (0..20)
        .map(|_| {
            let request =
                client().post(host.url("/users/")).json(&json!({ "email": "race@example.com", "password": PASSWORD }));
            tokio::spawn(request.send())
        })
        .collect();
    let mut statuses = Vec::new();
    for attempt in attempts {
        statuses.push(attempt.await.unwrap().unwrap().status());
    }
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::CREATED).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == StatusCode::CREATED || *s == StatusCode::BAD_REQUEST), "{statuses:?}");
    login(&host, "race@example.com", PASSWORD).await;
}

// ---- POST /token ----

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

// ---- GET /users/me/ ----

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
    let mut bad: Vec<HeaderValue> = ["garbage", "a.b.c", "", tampered.as_str(), alg_none.as_str(), foreign.as_str()]
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
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    let host = TestHost::spawn_with(HostOptions { token_ttl: Some(1), leeway: Some(0), ..Default::default() });
    register(&host, "ada@example.com", PASSWORD).await;
    let token = login(&host, "ada@example.com", PASSWORD).await;
    // Wait for the clock, not for the host: poll until the one-second lifetime has passed.
    let deadline = Instant::now() + Duration::from_secs(10);
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

/// A token signed with the host's own secret (read from its data directory) for any subject.
fn forge(host: &TestHost, subject: &str) -> String {
    let key = std::fs::read(host.data_dir.join("jwt-secret")).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let settings = auth_guest::tokens::TokenSettings {
        signing_key: &key,
        issuer: "loom-auth",
        now,
        ttl_seconds: 600,
        leeway_seconds: 5,
    };
    auth_guest::tokens::issue(&settings, subject).unwrap().0
}

#[tokio::test]
async fn tokens_for_gone_or_inactive_users_are_refused() {
    let host = TestHost::spawn();
    let account = register(&host, "ada@example.com", PASSWORD).await;
    // A well-signed token is accepted for the account it names...
    let id = account["id"].as_i64().unwrap().to_string();
    assert_eq!(me(&host, bearer(&forge(&host, &id))).await.status(), StatusCode::OK);
    // ...but not for an account that does not exist or a subject that is no id.
    for subject in ["999999", "not-a-number"] {
        let response = me(&host, bearer(&forge(&host, subject))).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{subject}");
        assert_eq!(detail(response).await, "Could not validate credentials");
    }
    // Deactivate the account behind the host's back: its token stops working.
    let token = login(&host, "ada@example.com", PASSWORD).await;
    let url = format!("sqlite://{}", host.data_dir.join("loom-auth.db").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query("UPDATE users SET is_active = 0").execute(&pool).await.unwrap();
    pool.close().await;
    let response = me(&host, bearer(&token)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(detail(response).await, "Could not validate credentials");
    let login = post_token(&host, &[("username", "ada@example.com"), ("password", PASSWORD)]).await;
    assert_eq!(login.status(), StatusCode::UNAUTHORIZED);
}

// ---- the rest ----

#[tokio::test]
async fn healthz_reports_the_component_and_the_database() {
    use sha2::Digest;
    let host = TestHost::spawn();
    let response = client().get(host.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let wasm = std::fs::read(loom_e2e::component()).unwrap();
    let digest: String = sha2::Sha256::digest(&wasm).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(body["component"]["sha256"], digest);
    assert_eq!(body["component"]["wit_version"], "0.1.0");
    assert_eq!(body["component"]["wit_package"], "loom:auth@0.1.0");
    assert_eq!(body["database"], "ok");
    assert_eq!(body["status"], "ok");
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
    for path in ["/users/", "/token", "/users/me/", "/healthz", "/nope"] {
        for body in bodies {
            for content_type in content_types {
                let response = client()
                    .post(host.url(path))
                    .header("content-type", content_type)
                    .header("authorization", HeaderValue::from_bytes(b"Bearer \x80\xff").unwrap())
                    .body(body.to_vec())
                    .send()
                    .await
                    .unwrap();
                let status = response.status();
                assert!(status.is_client_error(), "{path} {content_type} {body:?} gave {status}");
                assert!(!detail(response).await.is_empty());
            }
        }
    }
}

#[tokio::test]
async fn a_restart_on_the_same_data_directory_keeps_accounts_and_tokens() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let first = TestHost::spawn_in(dir.path(), HostOptions::default());
    let account = register(&first, "ada@example.com", PASSWORD).await;
    let token = login(&first, "ada@example.com", PASSWORD).await;
    first.stop();
    let mode = std::fs::metadata(dir.path().join("jwt-secret")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    let second = TestHost::spawn_in(dir.path(), HostOptions::default());
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
    let secret = std::fs::read(host.data_dir.join("jwt-secret")).unwrap();
    let logs = host.logs();
    assert!(logs.contains("issued an access token"), "the log is being captured:\n{logs}");
    for needle in [PASSWORD, "a wrong guess", token.as_str(), token.split('.').nth(2).unwrap()] {
        assert!(!logs.contains(needle), "{needle:?} leaked into the log:\n{logs}");
    }
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    assert!(!logs.contains(&hex));
}
