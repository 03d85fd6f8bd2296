//! Two-factor login: enrolment pending until a right first code (then every other session
//! ends); `mfa_required` only after the right password; each code good once (also for eight
//! logins racing with one); a step of drift either way accepted and three refused; recovery
//! codes once each; wrong codes against the login throttle; `amr` in tokens and refreshes;
//! turning off and renewing codes with the password and a code; nothing of it in clear in the
//! database; and a component of the previous contract serving logins without it. Codes are
//! computed as an authenticator app does, by `loom_e2e::totp` (not the component's code).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use loom_e2e::totp::{code_at, code_now, now};
use loom_e2e::{HostOptions, TestHost, client, register};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::sessions::{EMAIL, pair, refresh, tokens};
use crate::{PASSWORD, bearer, detail, me, post_token};

/// What enrolment showed.
struct Enrolment {
    secret: String,
    recovery_codes: Vec<String>,
}

async fn enrol(host: &TestHost, access: &str) -> reqwest::Response {
    client()
        .post(host.url("/users/me/2fa"))
        .bearer_auth(access)
        .json(&json!({"password": PASSWORD}))
        .send()
        .await
        .unwrap()
}

async fn confirm(host: &TestHost, access: &str, code: &str) -> reqwest::Response {
    client()
        .post(host.url("/users/me/2fa/confirm"))
        .bearer_auth(access)
        .json(&json!({"code": code}))
        .send()
        .await
        .unwrap()
}

async fn enrolment(response: reqwest::Response) -> Enrolment {
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let uri = body["otpauth_uri"].as_str().unwrap();
    let secret = body["secret"].as_str().unwrap().to_owned();
    assert!(uri.starts_with("otpauth://totp/Loom%20Auth:ada%40example.com?secret="), "{uri}");
    assert!(uri.contains(&format!("secret={secret}&issuer=Loom%20Auth")), "{uri}");
    assert_eq!(secret.len(), 32, "160 bits, base32");
    let codes: Vec<String> = serde_json::from_value(body["recovery_codes"].clone()).unwrap();
    assert_eq!(codes.len(), 10);
    Enrolment { secret, recovery_codes: codes }
}

/// Waits (at most four seconds) until the current 30-second step has at least four left, so
/// codes computed now are judged in the same step by the host.
fn away_from_a_step_edge() {
    while now() % 30 > 25 {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Ada registered, logged in, enrolled and confirmed: her access token and what enrolment
/// showed. The confirming code's step is spent.
async fn with_two_factor(host: &TestHost) -> (String, Enrolment) {
    register(host, EMAIL, PASSWORD).await;
    let (access, _) = pair(host).await;
    let enrolled = enrolment(enrol(host, &access).await).await;
    away_from_a_step_edge();
    assert_eq!(confirm(host, &access, &code_now(&enrolled.secret)).await.status(), StatusCode::NO_CONTENT);
    (access, enrolled)
}

async fn login_with(host: &TestHost, password: &str, otp: Option<&str>) -> reqwest::Response {
    let mut form = vec![("username", EMAIL), ("password", password)];
    form.extend(otp.map(|otp| ("otp", otp)));
    post_token(host, &form).await
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn enrolment_is_pending_until_a_right_first_code_and_then_other_sessions_end() {
    let host = TestHost::spawn();
    register(&host, EMAIL, PASSWORD).await;
    let (other_access, other_refresh) = pair(&host).await;
    let (access, _) = pair(&host).await;
    let wrong = client().post(host.url("/users/me/2fa")).bearer_auth(&access).json(&json!({"password": "nope"}));
    assert_eq!(wrong.send().await.unwrap().status(), StatusCode::BAD_REQUEST);
    let enrolled = enrolment(enrol(&host, &access).await).await;
    // Pending: logins still need the password only.
    assert_eq!(login_with(&host, PASSWORD, None).await.status(), StatusCode::OK);
    let refused = confirm(&host, &access, "000000").await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(detail(refused).await.starts_with("The code is wrong"));
    away_from_a_step_edge();
    assert_eq!(confirm(&host, &access, &code_now(&enrolled.secret)).await.status(), StatusCode::NO_CONTENT);
    // The confirming session goes on; the others ended (their tokens and refresh tokens).
    assert_eq!(me(&host, bearer(&access)).await.status(), StatusCode::OK);
    assert_eq!(me(&host, bearer(&other_access)).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(refresh(&host, &other_refresh).await.status(), StatusCode::BAD_REQUEST);
    let again = confirm(&host, &access, &code_now(&enrolled.secret)).await;
    assert_eq!(again.status(), StatusCode::CONFLICT, "nothing is pending any more");
    assert_eq!(enrol(&host, &access).await.status(), StatusCode::CONFLICT, "on already");
    host.wait_for_log("mfa.enabled");
    // The session list says how each login was made.
    let listed: Value =
        client().get(host.url("/sessions")).bearer_auth(&access).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["amr"], json!(["pwd"]), "{listed}");
}

#[tokio::test]
async fn a_personal_access_token_of_a_two_factor_account_needs_a_code_too() {
    let host = TestHost::spawn();
    let (_, enrolled) = with_two_factor(&host).await;
    let logged = login_with(&host, PASSWORD, Some(&enrolled.recovery_codes[0])).await;
    let (access, _) = tokens(logged).await;
    let create = |body: Value| client().post(host.url("/users/me/tokens")).bearer_auth(&access).json(&body).send();
    let without = create(json!({"name": "ci", "password": PASSWORD})).await.unwrap();
    assert_eq!(without.status(), StatusCode::FORBIDDEN);
    assert!(detail(without).await.contains("as code"));
    let wrong = create(json!({"name": "ci", "password": PASSWORD, "code": "000000"})).await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let made = create(json!({"name": "ci", "password": PASSWORD, "code": enrolled.recovery_codes[1]})).await.unwrap();
    assert_eq!(made.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn a_login_needs_a_code_after_the_right_password_and_each_code_works_once() {
    let host = TestHost::spawn();
    let (_, enrolled) = with_two_factor(&host).await;
    // A wrong password is the same 401 as ever: nothing says the account has a second factor.
    let wrong = login_with(&host, "not the password", None).await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(
        (body["error"].as_str(), body["detail"].as_str()),
        (Some("invalid_grant"), Some("Incorrect username or password"))
    );
    let needed = login_with(&host, PASSWORD, None).await;
    assert_eq!(needed.status(), StatusCode::FORBIDDEN);
    let body: Value = needed.json().await.unwrap();
    assert_eq!(body["error"], "mfa_required", "{body}");
    assert!(body["detail"].as_str().unwrap().contains("as otp") && body["error_description"].is_string(), "{body}");

    // The confirming code's step is spent: its code again is a replay.
    let replayed = login_with(&host, PASSWORD, Some(&code_now(&enrolled.secret))).await;
    assert_eq!(replayed.status(), StatusCode::UNAUTHORIZED);
    let body: Value = replayed.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant", "{body}");
    // A step ahead (a phone's clock a little fast) is accepted, once; with spaces as apps show it.
    let ahead = code_at(&enrolled.secret, now() + 30);
    let spaced = format!("{} {}", &ahead[..3], &ahead[3..]);
    let logged = login_with(&host, PASSWORD, Some(&spaced)).await;
    assert_eq!(logged.status(), StatusCode::OK);
    let (access, refresh_token) = tokens(logged).await;
    assert_eq!(claims(&access)["amr"], json!(["pwd", "otp"]));
    assert_eq!(login_with(&host, PASSWORD, Some(&ahead)).await.status(), StatusCode::UNAUTHORIZED, "used");
    // A refresh keeps the methods, without a code.
    let renewed = refresh(&host, &refresh_token).await;
    assert_eq!(renewed.status(), StatusCode::OK);
    let (renewed_access, _) = tokens(renewed).await;
    assert_eq!(claims(&renewed_access)["amr"], json!(["pwd", "otp"]));
    // Three steps away either way: refused.
    for far in [now() - 90, now() + 90] {
        let refused = login_with(&host, PASSWORD, Some(&code_at(&enrolled.secret, far))).await;
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    }
    // A recovery code works once, typed as a person might.
    let typed = enrolled.recovery_codes[4].to_uppercase();
    assert_eq!(login_with(&host, PASSWORD, Some(&typed)).await.status(), StatusCode::OK);
    assert_eq!(login_with(&host, PASSWORD, Some(&enrolled.recovery_codes[4])).await.status(), StatusCode::UNAUTHORIZED);
    let logs = host.logs();
    assert!(logs.contains("mfa.recovery_used") && logs.contains("mfa.failed"), "{logs}");
}

#[tokio::test]
async fn password_logins_carry_amr_pwd() {
    let host = TestHost::spawn();
    register(&host, EMAIL, PASSWORD).await;
    let (access, refresh_token) = pair(&host).await;
    assert_eq!(claims(&access)["amr"], json!(["pwd"]));
    let (renewed, _) = tokens(refresh(&host, &refresh_token).await).await;
    assert_eq!(claims(&renewed)["amr"], json!(["pwd"]));
}

#[tokio::test]
async fn eight_logins_racing_with_one_code_let_exactly_one_in() {
    let host = TestHost::spawn();
    let (_, enrolled) = with_two_factor(&host).await;
    away_from_a_step_edge();
    let code = code_at(&enrolled.secret, now() + 30);
    let url = host.url("/token");
    let logins: Vec<_> = (0..8)
        .map(|_| {
            let (url, code) = (url.clone(), code.clone());
            tokio::spawn(async move {
                let form = [("username", EMAIL), ("password", PASSWORD), ("otp", code.as_str())];
                client().post(url).form(&form).send().await.unwrap().status()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for login in logins {
        statuses.push(login.await.unwrap());
    }
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(ok, 1, "{statuses:?}");
    let others_refused = statuses
        .iter()
        .all(|s| matches!(*s, StatusCode::OK | StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS));
    assert!(others_refused, "{statuses:?}");
}

#[tokio::test]
async fn wrong_codes_count_against_the_login_throttle() {
    let host = TestHost::spawn_with(HostOptions {
        args: vec!["--login-max-failures".into(), "3".into()],
        ..Default::default()
    });
    let (_, enrolled) = with_two_factor(&host).await;
    for _ in 0..2 {
        assert_eq!(login_with(&host, PASSWORD, Some("000000")).await.status(), StatusCode::UNAUTHORIZED);
    }
    // Asking without a code neither counts nor clears the failures (a right password alone
    // must not reset the count wrong codes made).
    assert_eq!(login_with(&host, PASSWORD, None).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(login_with(&host, PASSWORD, Some("999999")).await.status(), StatusCode::UNAUTHORIZED);
    // Past the allowance, even the right password and a right code wait.
    let throttled = login_with(&host, PASSWORD, Some(&code_at(&enrolled.secret, now() + 30))).await;
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(login_with(&host, PASSWORD, None).await.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn turning_off_and_renewing_recovery_codes_need_the_password_and_a_code() {
    let host = TestHost::spawn();
    let (access, enrolled) = with_two_factor(&host).await;
    let renew =
        |body: Value| client().post(host.url("/users/me/2fa/recovery-codes")).bearer_auth(&access).json(&body).send();
    let refused = renew(json!({"password": PASSWORD, "code": "000000"})).await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let refused = renew(json!({"password": "nope", "code": enrolled.recovery_codes[0]})).await.unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let renewed = renew(json!({"password": PASSWORD, "code": enrolled.recovery_codes[0]})).await.unwrap();
    assert_eq!(renewed.status(), StatusCode::OK);
    let fresh: Vec<String> =
        serde_json::from_value(renewed.json::<Value>().await.unwrap()["recovery_codes"].clone()).unwrap();
    assert_eq!(fresh.len(), 10);
    // The old codes are dead, the new ones work.
    assert_eq!(login_with(&host, PASSWORD, Some(&enrolled.recovery_codes[1])).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(login_with(&host, PASSWORD, Some(&fresh[0])).await.status(), StatusCode::OK);

    let off = |body: Value| client().delete(host.url("/users/me/2fa")).bearer_auth(&access).json(&body).send();
    assert_eq!(off(json!({"password": PASSWORD, "code": "123"})).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    away_from_a_step_edge();
    let code = code_at(&enrolled.secret, now() + 30);
    assert_eq!(off(json!({"password": PASSWORD, "code": code})).await.unwrap().status(), StatusCode::NO_CONTENT);
    assert_eq!(login_with(&host, PASSWORD, None).await.status(), StatusCode::OK, "the password alone again");
    assert_eq!(off(json!({"password": PASSWORD, "code": code})).await.unwrap().status(), StatusCode::CONFLICT);
    host.wait_for_log("mfa.disabled");
}

#[tokio::test]
async fn the_database_holds_neither_the_secret_nor_a_recovery_code() {
    if loom_e2e::Backend::from_env() != loom_e2e::Backend::Sqlite {
        return; // The file is SQLite's; PostgreSQL runs the rest of the suite.
    }
    let host = TestHost::spawn();
    let (_, enrolled) = with_two_factor(&host).await;
    let mut bytes = Vec::new();
    for file in ["loom-auth.db", "loom-auth.db-wal"] {
        bytes.extend(std::fs::read(host.data_dir.join(file)).unwrap_or_default());
    }
    let text = String::from_utf8_lossy(&bytes);
    assert!(!text.contains(&enrolled.secret), "the base32 secret is in the database");
    for code in &enrolled.recovery_codes {
        assert!(!text.contains(code.as_str()), "a recovery code is in the database");
    }
    let raw = loom_e2e::totp::secret_bytes(&enrolled.secret);
    assert!(!bytes.windows(raw.len()).any(|window| window == raw.as_slice()), "the raw secret is in the database");
}

#[tokio::test]
async fn a_component_of_the_previous_contract_serves_logins_and_says_it_cannot_enrol() {
    let component = loom_e2e::built_component("fixtures/previous.wasm");
    let host = TestHost::spawn_with(HostOptions { component: Some(component), ..Default::default() });
    let health: Value = client().get(host.url("/healthz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        (health["component"]["wit_version"].as_str(), health["component"]["second_factor"].as_bool()),
        (Some("0.2.0"), Some(false))
    );
    register(&host, EMAIL, PASSWORD).await;
    let (access, _) = pair(&host).await;
    let refused = enrol(&host, &access).await;
    assert_eq!(refused.status(), StatusCode::NOT_IMPLEMENTED);
    let said = detail(refused).await;
    assert!(
        said.contains("Two-factor login is not available on this server") && said.contains("loom:auth@0.2.0"),
        "{said}"
    );
}

#[tokio::test]
async fn codes_checked_outside_the_login_count_too_and_a_right_password_clears_nothing() {
    let host = TestHost::spawn_with(HostOptions {
        args: vec!["--login-max-failures".into(), "3".into()],
        ..Default::default()
    });
    let (access, enrolled) = with_two_factor(&host).await;
    let send = |method: reqwest::Method, path: &str, body: Value| {
        client().request(method, host.url(path)).bearer_auth(&access).json(&body).send()
    };
    let wrong = json!({"password": PASSWORD, "code": "000000"});
    let off = send(reqwest::Method::DELETE, "/users/me/2fa", wrong.clone()).await.unwrap();
    assert_eq!(off.status(), StatusCode::UNAUTHORIZED);
    let renew = send(reqwest::Method::POST, "/users/me/2fa/recovery-codes", wrong).await.unwrap();
    assert_eq!(renew.status(), StatusCode::UNAUTHORIZED);
    // The right password on a managing route resets nothing.
    let token =
        send(reqwest::Method::POST, "/users/me/tokens", json!({"name": "ci", "password": PASSWORD})).await.unwrap();
    assert_eq!(token.status(), StatusCode::FORBIDDEN);
    assert_eq!(login_with(&host, PASSWORD, Some("111111")).await.status(), StatusCode::UNAUTHORIZED);
    // Three wrong codes, wherever they were typed: the right ones wait now.
    let right = code_at(&enrolled.secret, now() + 30);
    assert_eq!(login_with(&host, PASSWORD, Some(&right)).await.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_phone_a_step_behind_is_accepted() {
    let host = TestHost::spawn();
    register(&host, EMAIL, PASSWORD).await;
    let (access, _) = pair(&host).await;
    let enrolled = enrolment(enrol(&host, &access).await).await;
    away_from_a_step_edge();
    // The app's clock 30 seconds behind: its code is the previous step's.
    let behind = code_at(&enrolled.secret, now() - 30);
    assert_eq!(confirm(&host, &access, &behind).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(login_with(&host, PASSWORD, Some(&code_now(&enrolled.secret))).await.status(), StatusCode::OK);
}
