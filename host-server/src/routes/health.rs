//! `GET /healthz`: the active component and whether the database answers.

use std::time::UNIX_EPOCH;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::runtime::WIT_PACKAGE;
use crate::startup::AppState;

pub async fn show(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let info = state.runtime.info();
    let database = match state.store.ping().await {
        Ok(()) => "ok",
        Err(error) => {
            tracing::error!(%error, "health check: the database does not answer");
            "unavailable"
        }
    };
    let status = if database == "ok" { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let loaded_at = info.loaded_at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let body = json!({
        "status": if status == StatusCode::OK { "ok" } else { "degraded" },
        "component": {
            "sha256": info.sha256,
            "wit_package": format!("{WIT_PACKAGE}@{}", info.wit_version),
            "wit_version": info.wit_version,
            "loaded_at": loaded_at,
        },
        "database": database,
    });
    (status, Json(body))
}
