//! The HTTP API end to end: the real host, the real component, a real database:
//! SQLite, or PostgreSQL with `LOOM_TEST_BACKEND=postgres` (`just test` runs both).
//! One test binary; a module per endpoint family.

mod logout;
mod me;
mod pats;
mod policies;
mod races;
mod rest;
mod second_factor;
mod secrets;
mod sessions;
mod spellings;
mod token;
mod users;

use loom_e2e::{TestHost, client};
use reqwest::header::{HeaderValue, WWW_AUTHENTICATE};
use serde_json::Value;

pub(crate) const PASSWORD: &str = "correct horse battery staple";

pub(crate) async fn detail(response: reqwest::Response) -> String {
    let body: Value = response.json().await.expect("error bodies are JSON");
    body["detail"].as_str().unwrap_or_else(|| panic!("no string detail in {body}")).to_owned()
}

pub(crate) fn challenge(response: &reqwest::Response) -> Option<&str> {
    response.headers().get(WWW_AUTHENTICATE).map(|v| v.to_str().unwrap())
}

pub(crate) async fn me(host: &TestHost, authorization: Option<HeaderValue>) -> reqwest::Response {
    let mut request = client().get(host.url("/users/me/"));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    request.send().await.unwrap()
}

pub(crate) fn bearer(token: &str) -> Option<HeaderValue> {
    Some(HeaderValue::from_str(&format!("Bearer {token}")).unwrap())
}

pub(crate) async fn post_user(host: &TestHost, body: Value) -> reqwest::Response {
    client().post(host.url("/users/")).json(&body).send().await.unwrap()
}

pub(crate) async fn post_token(host: &TestHost, form: &[(&str, &str)]) -> reqwest::Response {
    client().post(host.url("/token")).form(form).send().await.unwrap()
}
