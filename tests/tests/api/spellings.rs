//! Inputs as real machines and people spell them: a password in another Unicode form,
//! names pasted with whitespace around them, forms as other OAuth 2.0 clients send them.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use loom_e2e::{TestHost, client, register};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{PASSWORD, post_token, post_user};

/// "Mañana-Brücke-42", composed (NFC) and decomposed (NFD, as macOS keyboards send it).
const COMPOSED: &str = "Ma\u{f1}ana-Br\u{fc}cke-42";
const DECOMPOSED: &str = "Man\u{303}ana-Bru\u{308}cke-42";

async fn login_status(host: &TestHost, username: &str, password: &str) -> StatusCode {
    post_token(host, &[("username", username), ("password", password)]).await.status()
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn stored_hash(host: &TestHost, email: &str) -> String {
    loom_e2e::query_one(&host.database_url, &format!("SELECT hashed_password FROM users WHERE email = '{email}'"))
}

#[tokio::test]
async fn the_same_password_in_another_unicode_form_logs_in() {
    let host = TestHost::spawn();
    register(&host, "ada@example.com", COMPOSED).await;
    register(&host, "bob@example.com", DECOMPOSED).await;
    for email in ["ada@example.com", "bob@example.com"] {
        for password in [COMPOSED, DECOMPOSED] {
            assert_eq!(login_status(&host, email, password).await, StatusCode::OK, "{email} with {password:?}");
        }
        assert_eq!(login_status(&host, email, "Manana-Brucke-42").await, StatusCode::UNAUTHORIZED);
    }
    // Non-ASCII spaces are spaces (RFC 8265's OpaqueString).
    register(&host, "carl@example.com", "no\u{a0}break space 42").await;
    assert_eq!(login_status(&host, "carl@example.com", "no break space 42").await, StatusCode::OK);
}

#[tokio::test]
async fn an_account_hashed_from_a_raw_spelling_keeps_logging_in_and_is_upgraded() {
    let host = TestHost::spawn();
    register(&host, "ada@example.com", PASSWORD).await;
    // As a server before normalisation stored a password typed decomposed.
    let raw = auth_guest::passwords::hash(DECOMPOSED).unwrap();
    host.sql(&format!("UPDATE users SET hashed_password = '{raw}' WHERE email = 'ada@example.com'"));
    // Typed composed now (another machine, or a loom that normalises).
    assert_eq!(login_status(&host, "ada@example.com", COMPOSED).await, StatusCode::OK);
    let upgraded = stored_hash(&host, "ada@example.com");
    assert_ne!(upgraded, raw, "the hash is re-made from the normalised spelling");
    assert!(auth_guest::passwords::verify(COMPOSED, &upgraded).unwrap().matches);
    assert_eq!(login_status(&host, "ada@example.com", DECOMPOSED).await, StatusCode::OK);
    assert_eq!(login_status(&host, "ada@example.com", "wrong password").await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn names_pasted_with_whitespace_around_them_are_the_names() {
    let host = TestHost::spawn();
    let created =
        post_user(&host, json!({ "email": " ada@example.com\n", "username": "\tada ", "password": PASSWORD })).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.unwrap();
    assert_eq!((created["email"].as_str(), created["username"].as_str()), (Some("ada@example.com"), Some("ada")));
    for name in ["ada@example.com ", " ada@example.com", "ada@example.com\r\n", "\u{a0}ada ", "ada\t"] {
        assert_eq!(login_status(&host, name, PASSWORD).await, StatusCode::OK, "{name:?}");
    }
    // The password is never trimmed: spaces may be part of it.
    assert_eq!(login_status(&host, "ada", &format!("{PASSWORD} ")).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn forms_as_other_oauth_clients_send_them() {
    let host = TestHost::spawn();
    register(&host, "ada@example.com", PASSWORD).await;
    let body = format!("username=ada%40example.com&password={}", PASSWORD.replace(' ', "+"));
    let send = |content_type: &'static str, body: String, authorization: Option<String>| {
        let mut request = client().post(host.url("/token")).header("content-type", content_type).body(body);
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        request.send()
    };
    // Media types are case-insensitive (RFC 9110 §8.3.1); parameters may follow.
    for content_type in ["Application/X-WWW-Form-Urlencoded", "APPLICATION/X-WWW-FORM-URLENCODED; Charset=UTF-8"] {
        let response = send(content_type, body.clone(), None).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{content_type}");
    }
    let not_a_form = send("application/x-www-form-urlencodedish", body.clone(), None).await.unwrap();
    assert_eq!(not_a_form.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // A parameter without a value is omitted (RFC 6749 §3.2).
    let form = "application/x-www-form-urlencoded";
    for extra in ["&grant_type=", "&client_id=", "&scope=", "&grant_type=password&client_id="] {
        let response = send(form, format!("{body}{extra}"), None).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{extra}");
        let token: Value = response.json().await.unwrap();
        assert_eq!(claims(token["access_token"].as_str().unwrap())["client_id"], "loom");
    }
    // A parameter of the grant sent twice is refused (RFC 6749 §3.1); one it does not know is
    // ignored, and empty values are omitted before that is decided.
    let twice = send(form, format!("{body}&grant_type=password&grant_type=password"), None).await.unwrap();
    assert_eq!(twice.status(), StatusCode::UNPROCESSABLE_ENTITY);
    for extra in ["&foo=1&foo=2", "&grant_type=&grant_type=", "&client_id=&client_id=loom"] {
        let response = send(form, format!("{body}{extra}"), None).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{extra}");
    }
    let blank = send(form, format!("username=%20%09&password={}", PASSWORD.replace(' ', "+")), None).await.unwrap();
    assert_eq!(blank.status(), StatusCode::UNPROCESSABLE_ENTITY, "a blank username is no username");
    // A client secret in the form is refused like one in HTTP Basic: there are none.
    let secret = send(form, format!("{body}&client_id=app&client_secret=s3cret"), None).await.unwrap();
    assert_eq!(secret.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(secret.json::<Value>().await.unwrap()["error"], "invalid_client");
    // A public client authenticating with HTTP Basic and an empty secret (RFC 6749 §2.3.1).
    let basic = |credentials: &str| Some(format!("Basic {}", STANDARD.encode(credentials)));
    let response = send(form, body.clone(), basic("authlib-app:")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let token: Value = response.json().await.unwrap();
    assert_eq!(claims(token["access_token"].as_str().unwrap())["client_id"], "authlib-app");
    let agreeing = send(form, format!("{body}&client_id=authlib-app"), basic("authlib-app:")).await.unwrap();
    assert_eq!(agreeing.status(), StatusCode::OK);
    let disagreeing = send(form, format!("{body}&client_id=other"), basic("authlib-app:")).await.unwrap();
    assert_eq!(disagreeing.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // Two Authorization headers are one too many, whatever the second says.
    let two = client()
        .post(host.url("/token"))
        .header("content-type", form)
        .header("authorization", format!("Basic {}", STANDARD.encode("authlib-app:")))
        .header("authorization", format!("Basic {}", STANDARD.encode("other:s3cret")))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(two.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(two.json::<Value>().await.unwrap()["error"], "invalid_request");
    // There are no client secrets to check: one is refused, never ignored.
    let secret = send(form, body.clone(), basic("authlib-app:s3cret")).await.unwrap();
    assert_eq!(secret.status(), StatusCode::UNAUTHORIZED);
    assert!(secret.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic"));
    assert_eq!(secret.json::<Value>().await.unwrap()["error"], "invalid_client");
}
