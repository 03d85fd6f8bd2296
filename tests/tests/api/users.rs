//! `POST /users/`.

use loom_e2e::{TestHost, client, login, register};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{PASSWORD, detail, post_user};

#[tokio::test]
async fn registration_returns_the_account_without_secrets() {
    let host = TestHost::spawn();
    let response = post_user(&host, json!({ "email": "ada@example.com", "password": PASSWORD })).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({ "id": body["id"], "email": "ada@example.com", "username": null, "is_active": true }));
    assert!(body["id"].as_i64().unwrap() > 0);
}

#[tokio::test]
async fn usernames_are_optional_unique_in_any_case_and_log_in_like_emails() {
    let host = TestHost::spawn();
    let response = post_user(&host, json!({ "email": "ada@example.com", "username": "Ada.L", "password": PASSWORD }));
    let response = response.await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let ada: Value = response.json().await.unwrap();
    assert_eq!(ada, json!({ "id": ada["id"], "email": "ada@example.com", "username": "Ada.L", "is_active": true }));

    for taken in ["Ada.L", "ada.l", "ADA.L"] {
        let again = post_user(&host, json!({ "email": "other@example.com", "username": taken, "password": PASSWORD }));
        let again = again.await;
        assert_eq!(again.status(), StatusCode::BAD_REQUEST, "{taken}");
        assert_eq!(detail(again).await, "Username already taken");
    }
    let long = "x".repeat(33);
    for bad in ["ab", long.as_str(), "ada@home", "with space", "adä", ""] {
        let refused = post_user(&host, json!({ "email": "bad@example.com", "username": bad, "password": PASSWORD }));
        let refused = refused.await;
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad:?}");
        assert!(detail(refused).await.contains("username must be 3 to 32"));
    }

    // Either name logs in, in any case, to the same account.
    for name in ["ada.l", "ADA.L", "Ada@Example.com"] {
        let token = login(&host, name, PASSWORD).await;
        let me = client().get(host.url("/users/me/")).bearer_auth(&token).send().await.unwrap();
        assert_eq!(me.json::<Value>().await.unwrap(), ada, "{name}");
    }
    let wrong = client().post(host.url("/token")).form(&[("username", "nobody"), ("password", PASSWORD)]).send();
    assert_eq!(wrong.await.unwrap().status(), StatusCode::UNAUTHORIZED);
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
    // Eight characters, 32 bytes: long enough (all different: eight of one are refused as guessable).
    register(&host, "keys@example.com", "🔑🔒🗝🔐🛡🧩🎲🌵").await;
    login(&host, "keys@example.com", "🔑🔒🗝🔐🛡🧩🎲🌵").await;
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

#[tokio::test]
async fn look_alike_addresses_are_stored_plain_and_cannot_make_a_second_account() {
    let host = TestHost::spawn();
    // U+212A KELVIN SIGN looks like K; NFKC makes it K.
    let look_alike = "\u{212A}elvin@example.com";
    let response = post_user(&host, json!({ "email": look_alike, "password": PASSWORD })).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["email"], "Kelvin@example.com");
    // The plain spelling names the same account: refused as a duplicate, and it logs in.
    let again = post_user(&host, json!({ "email": "kelvin@example.com", "password": PASSWORD })).await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    assert_eq!(detail(again).await, "Email already registered");
    loom_e2e::login(&host, "KELVIN@example.com", PASSWORD).await;
    // An internationalised domain is kept in its ASCII form.
    let idn = post_user(&host, json!({ "email": "ada@bücher.example", "password": PASSWORD })).await;
    assert_eq!(idn.json::<Value>().await.unwrap()["email"], "ada@xn--bcher-kva.example");
    // Invisible characters would make a second account that lists as the first.
    register_ok(&host, "dave@example.com").await;
    for hidden in [
        "dave\u{200b}@example.com",
        "dave\u{2060}@example.com",
        "da\u{ad}ve@example.com",
        "\u{202e}dave@example.com",
        "dave@exam\u{200c}ple.com",
        "dave\u{feff}@example.com",
    ] {
        let response = post_user(&host, json!({ "email": hidden, "password": PASSWORD })).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{hidden:?}");
        assert!(detail(response).await.contains("invisible"), "{hidden:?}");
    }
}

async fn register_ok(host: &TestHost, email: &str) {
    let response = post_user(host, json!({ "email": email, "password": PASSWORD })).await;
    assert_eq!(response.status(), StatusCode::CREATED, "{email}");
}

#[tokio::test]
async fn the_most_common_passwords_are_refused_with_the_reason() {
    let host = TestHost::spawn();
    for common in ["password1", "qwertyuiop", "12345678"] {
        let response = post_user(&host, json!({ "email": "ada@example.com", "password": common })).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{common}");
        assert!(detail(response).await.contains("most commonly used passwords"), "{common}");
    }
    register(&host, "ada@example.com", PASSWORD).await;
}
