//! `GET /healthz`: the active component, the last reload's outcome (without its
//! reason, which stays in the log) and whether the database answers.

use std::time::UNIX_EPOCH;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::runtime::{Origin, ReloadOutcome, WIT_PACKAGE};
use crate::state::AppState;

pub async fn show(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let info = state.runtime.info();
    let unix = |t: std::time::SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let last_reload = state.runtime.last_reload().map(|report| {
        // The reason a candidate was refused names files and wasmtime's internals:
        // it goes to the log only, never to this unauthenticated page.
        let (result, step) = match report.outcome {
            ReloadOutcome::Published => ("published", None),
            ReloadOutcome::Unchanged => ("unchanged", None),
            ReloadOutcome::Rejected { step, .. } => ("rejected", Some(step.to_string())),
        };
        json!({ "at": unix(report.at), "sha256": report.sha256, "result": result, "step": step })
    });
    let database = match state.store.ping().await {
        Ok(()) => "ok",
        Err(error) => {
            tracing::error!(%error, "health check: the database does not answer");
            "unavailable"
        }
    };
    let status = if database == "ok" { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = json!({
        "status": if status == StatusCode::OK { "ok" } else { "degraded" },
        "component": {
            "sha256": info.sha256,
            "wit_package": format!("{WIT_PACKAGE}@{}", info.wit_version),
            "wit_version": info.wit_version,
            "loaded_at": unix(info.loaded_at),
            "load_ms": info.load_time.as_millis() as u64,
            "from_cache": info.origin == Origin::Cache,
        },
        "last_reload": last_reload,
        "database": database,
    });
    (status, Json(body))
}
