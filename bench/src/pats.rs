//! Personal access tokens under load: `GET /users/me/` with a PAT as bearer against a (cached)
//! access token, and RFC 8693 token exchanges per second, on SQLite.

use std::path::Path;

use anyhow::Context;

use crate::load::{self, Request};
use crate::{Bound, CLIENTS, Host, LOAD_TIME, PASSWORD, Row, account};

/// Exchanges at least this many per second on SQLite (the target).
const EXCHANGES_PER_SECOND: f64 = 2_000.0;

pub async fn rows(component: &Path) -> anyhow::Result<Vec<Row>> {
    eprintln!("measuring personal access tokens…");
    let dir = tempfile::tempdir()?;
    let host = Host::start(dir.path(), component).await?;
    let access = account(&host).await?;
    let made: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/users/me/tokens", host.base_url))
        .bearer_auth(&access)
        .json(&serde_json::json!({"name": "bench", "password": PASSWORD}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let pat = made["token"].as_str().context("a personal access token")?.to_owned();
    let with_jwt = load::run(Request::get(&host.base_url, "/users/me/", Some(&access))?, CLIENTS, LOAD_TIME).await?;
    let with_pat = load::run(Request::get(&host.base_url, "/users/me/", Some(&pat))?, CLIENTS, LOAD_TIME).await?;
    let exchange = Request::post_form(
        &host.base_url,
        "/token",
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
            ("subject_token", &pat),
            ("subject_token_type", "urn:ietf:params:oauth:token-type:access_token"),
        ],
    )?;
    let exchanges = load::run(exchange, CLIENTS, LOAD_TIME).await?;
    Ok(vec![
        Row {
            what: "GET /users/me/ with a personal access token vs a (cached) access token, 32 clients",
            measured: format!("{:.0} req/s vs {:.0} req/s", with_pat.per_second(), with_jwt.per_second()),
            ratio: Some(with_pat.per_second() / with_jwt.per_second()),
            bound: Some(Bound::AtLeast(0.8)),
            absolute: None,
        },
        Row {
            what: "POST /token, token exchange of a personal access token, 32 clients (SQLite)",
            measured: format!("{:.0} req/s", exchanges.per_second()),
            ratio: None,
            bound: None,
            absolute: Some(("≥ 2,000/s", exchanges.per_second() >= EXCHANGES_PER_SECOND)),
        },
    ])
}
