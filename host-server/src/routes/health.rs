//! `GET /healthz` (liveness): the process serves, with the active component and
//! the last reload's outcome (without its reason, which stays in the log); no
//! database round trip, so a database outage does not get healthy hosts
//! restarted. `GET /readyz` (readiness, for load balancers): `200` only while
//! the database answers and a component serves.

use std::time::{Duration, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::runtime::policy::POLICY_PACKAGE;
use crate::runtime::{Origin, ReloadOutcome, ReloadReport, WIT_PACKAGE};
use crate::state::AppState;

/// How long `/readyz` waits for the database before calling it unavailable.
const DATABASE_CHECK: Duration = Duration::from_secs(2);

/// Liveness: the process serves, with the component serving and the last reload's outcome.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    tag = "operations",
    responses((status = 200, description = "`status`, `component` (digest, WIT version, load time) and \
                                           `last_reload` (`null`, or its time, digest, result and step); `policy`: `null`, or the \
                                           policy's digest, contract, settings digest, deadline and last reload", body = Object))
)]
pub async fn show(State(state): State<AppState>) -> Json<Value> {
    let info = state.runtime.info();
    let last_reload = state.runtime.last_reload().map(reload_shown);
    let policy = state.policy().map(|policy| {
        let info = policy.info();
        json!({
            "sha256": info.sha256,
            "wit_package": format!("{POLICY_PACKAGE}@{}", info.wit_version),
            "settings_sha256": info.config_sha256,
            "deadline_ms": info.deadline.as_millis() as u64,
            "loaded_at": unix(info.loaded_at),
            "load_ms": info.load_time.as_millis() as u64,
            "from_cache": info.origin == Origin::Cache,
            "last_reload": policy.last_reload().map(reload_shown),
        })
    });
    Json(json!({
        "status": "ok",
        "component": {
            "sha256": info.sha256,
            "wit_package": format!("{WIT_PACKAGE}@{}", info.wit_version),
            "wit_version": info.wit_version,
            "second_factor": info.second_factor,
            "loaded_at": unix(info.loaded_at),
            "load_ms": info.load_time.as_millis() as u64,
            "from_cache": info.origin == Origin::Cache,
        },
        "last_reload": last_reload,
        "policy": policy,
    }))
}

/// A reload's time, digest, result and step. The reason a candidate was refused names files and
/// wasmtime's internals: it goes to the log only, never to this unauthenticated page.
fn reload_shown(report: ReloadReport) -> Value {
    let (result, step) = match report.outcome {
        ReloadOutcome::Published => ("published", None),
        ReloadOutcome::Unchanged => ("unchanged", None),
        ReloadOutcome::Rejected { step, .. } => ("rejected", Some(step.to_string())),
    };
    json!({ "at": unix(report.at), "sha256": report.sha256, "result": result, "step": step })
}

fn unix(t: std::time::SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Readiness: the database answers and a component serves.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready: `status`, `database` and the serving `component`'s digest", body = Object),
        (status = 503, description = "Not ready: the database does not answer (`detail` says so)", body = Object),
    )
)]
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let component = state.runtime.info().sha256;
    match tokio::time::timeout(DATABASE_CHECK, state.store.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, Json(json!({ "status": "ready", "database": "ok", "component": component }))),
        outcome => {
            let reason = match outcome {
                Ok(Err(error)) => error.to_string(),
                _ => format!("no answer within {DATABASE_CHECK:?}"),
            };
            tracing::warn!(%reason, "not ready: the database does not answer");
            let body = json!({
                "detail": "Not ready: the database does not answer",
                "status": "not ready",
                "database": "unavailable",
                "component": component,
            });
            (StatusCode::SERVICE_UNAVAILABLE, Json(body))
        }
    }
}
