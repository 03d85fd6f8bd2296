//! Prometheus metrics, served as text at `/metrics` on their own listener (`--metrics-bind`),
//! so that the API port never exposes them. Recorded through the `metrics` facade; without
//! `--metrics-bind` no recorder is installed and every record is a no-op.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;

use super::event::Event;

const REQUESTS: &str = "loom_http_requests_total";
const DURATION: &str = "loom_http_request_duration_seconds";
const LOGINS: &str = "loom_logins_total";
const REFRESHES: &str = "loom_refreshes_total";
const AUDIT_EVENTS: &str = "loom_audit_events_total";
const HASH_QUEUE: &str = "loom_hash_queue_depth";
const RELOADS: &str = "loom_component_reloads_total";
const TRAPS: &str = "loom_guest_traps_total";
const COMPONENT: &str = "loom_component_info";
const PAT_CHECKS: &str = "loom_pat_checks_total";
const POLICY_CALLS: &str = "loom_policy_calls_total";
const POLICY_DURATION: &str = "loom_policy_call_duration_seconds";
const POLICY_RELOADS: &str = "loom_policy_reloads_total";

/// Request latency buckets, in seconds: from a cached token check to a slow login.
const LATENCY_BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Policy call buckets, in seconds: from a Rust policy's tens of microseconds to the deadline.
const POLICY_BUCKETS: &[f64] =
    &[0.00002, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1];

/// How often the recorder's histograms are drained.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Installs the process's metrics recorder. Call once, before anything is recorded.
pub fn install() -> Result<PrometheusHandle, BuildError> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(DURATION.into()), LATENCY_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(POLICY_DURATION.into()), POLICY_BUCKETS)?
        .install_recorder()?;
    describe_counter!(REQUESTS, "HTTP requests answered, by route, method and status");
    describe_histogram!(DURATION, metrics::Unit::Seconds, "Time to answer an HTTP request, by route");
    describe_counter!(LOGINS, "Password logins, by outcome (ok, failed, throttled)");
    describe_counter!(REFRESHES, "Refresh grants, by outcome (ok, retried, reused, invalid)");
    describe_counter!(AUDIT_EVENTS, "Security events, by event name (as in the audit log)");
    describe_gauge!(HASH_QUEUE, "Password hashes waiting for a hashing slot");
    describe_counter!(RELOADS, "Component reloads, by result (published, rejected, unchanged)");
    describe_counter!(TRAPS, "Guest calls that trapped or ran past their deadline, by export");
    describe_counter!(
        PAT_CHECKS,
        "Personal access tokens presented (as bearer or to exchange), by outcome (ok, malformed, unknown, \
         expired, revoked, inactive)"
    );
    describe_counter!(POLICY_CALLS, "Policy calls, by hook and outcome (allow, deny, claims, fault)");
    describe_histogram!(POLICY_DURATION, metrics::Unit::Seconds, "Time of a policy call, by hook");
    describe_counter!(POLICY_RELOADS, "Policy reloads, by result (published, rejected, unchanged)");
    describe_gauge!(COMPONENT, "The serving component (1) by digest and WIT version; earlier ones 0");
    let upkeep = handle.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(UPKEEP_EVERY).await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}

/// Reads the password hashes waiting for a slot, at each scrape.
pub type QueueDepth = Arc<dyn Fn() -> usize + Send + Sync>;

/// Serves `/metrics` on `listener` until the process ends.
pub async fn serve(listener: TcpListener, handle: PrometheusHandle, queue_depth: QueueDepth) -> std::io::Result<()> {
    let app = axum::Router::new().route("/metrics", axum::routing::get(scrape)).with_state((handle, queue_depth));
    axum::serve(listener, app).await
}

async fn scrape(State((handle, queue_depth)): State<(PrometheusHandle, QueueDepth)>) -> Response {
    gauge!(HASH_QUEUE).set(queue_depth() as f64);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], handle.render()).into_response()
}

/// Middleware: counts each request and times it, labelled by its route's pattern (never the
/// raw path, whose values would be unbounded).
pub async fn track(matched: Option<MatchedPath>, request: Request, next: Next) -> Response {
    let route = matched.as_ref().map_or("unmatched", MatchedPath::as_str).to_owned();
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    counter!(REQUESTS, "route" => route.clone(), "method" => method, "status" => status).increment(1);
    histogram!(DURATION, "route" => route).record(started.elapsed().as_secs_f64());
    response
}

/// A method as a label: the standard ones by name, anything else as one value.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Counts a security event, and what it says about logins and components.
pub(super) fn count(event: &Event<'_>) {
    counter!(AUDIT_EVENTS, "event" => event.name()).increment(1);
    match event {
        Event::LoginSucceeded { .. } => counter!(LOGINS, "outcome" => "ok").increment(1),
        Event::LoginFailed { .. } => counter!(LOGINS, "outcome" => "failed").increment(1),
        Event::LoginThrottled { .. } => counter!(LOGINS, "outcome" => "throttled").increment(1),
        Event::SessionRefreshed { retried: false, .. } => counter!(REFRESHES, "outcome" => "ok").increment(1),
        Event::SessionRefreshed { retried: true, .. } => counter!(REFRESHES, "outcome" => "retried").increment(1),
        Event::RefreshReused { .. } => counter!(REFRESHES, "outcome" => "reused").increment(1),
        Event::ComponentPublished { sha256, wit_version, .. } => {
            counter!(RELOADS, "result" => "published").increment(1);
            serving(sha256, wit_version);
        }
        Event::ComponentRejected { .. } => counter!(RELOADS, "result" => "rejected").increment(1),
        Event::PolicyPublished { .. } => counter!(POLICY_RELOADS, "result" => "published").increment(1),
        Event::PolicyRejected { .. } => counter!(POLICY_RELOADS, "result" => "rejected").increment(1),
        _ => {}
    }
}

/// Counts a refresh token refused as unknown, spent, expired, revoked or another client's.
pub fn refresh_refused() {
    counter!(REFRESHES, "outcome" => "invalid").increment(1);
}

/// Counts a reload that found the same component.
/// A personal access token was presented; `outcome` as [`PAT_CHECKS`] describes.
pub fn pat_checked(outcome: &'static str) {
    counter!(PAT_CHECKS, "outcome" => outcome).increment(1);
}

pub fn reload_unchanged() {
    counter!(RELOADS, "result" => "unchanged").increment(1);
}

/// Counts a guest call that trapped or overran its deadline.
pub fn guest_trap(export: &'static str) {
    counter!(TRAPS, "export" => export).increment(1);
}

/// One policy call: its hook, outcome (`allow`, `deny`, `claims`, `fault`) and time.
pub fn policy_call(hook: &'static str, outcome: &'static str, took: Duration) {
    counter!(POLICY_CALLS, "hook" => hook, "outcome" => outcome).increment(1);
    histogram!(POLICY_DURATION, "hook" => hook).record(took.as_secs_f64());
}

/// A policy reload that found the same component and settings.
pub fn policy_unchanged() {
    counter!(POLICY_RELOADS, "result" => "unchanged").increment(1);
}

/// Marks the component serving now, and the one before as no longer serving.
fn serving(sha256: &str, wit_version: &str) {
    static PREVIOUS: Mutex<Option<(String, String)>> = Mutex::new(None);
    let mut previous = PREVIOUS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((sha256, wit_version)) = previous.take() {
        gauge!(COMPONENT, "sha256" => sha256, "wit_version" => wit_version).set(0.0);
    }
    gauge!(COMPONENT, "sha256" => sha256.to_owned(), "wit_version" => wit_version.to_owned()).set(1.0);
    *previous = Some((sha256.to_owned(), wit_version.to_owned()));
}

/// The log line tests and operators find the metrics address by.
pub fn announce(address: SocketAddr) {
    tracing::info!("serving metrics at http://{address}/metrics");
}
