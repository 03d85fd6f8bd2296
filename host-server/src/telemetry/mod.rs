//! What the host tells its operators: logs through `tracing` (text or JSON lines, filtered by
//! `RUST_LOG`, default `info`), security events ([`audit`]) and Prometheus metrics ([`measure`]).

pub mod audit;
pub mod event;
pub mod measure;

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// For people: one readable line per event.
    Text,
    /// For log pipelines: one JSON object per line, the event's fields at the top level.
    Json,
}

pub fn init(format: LogFormat) {
    init_at(format, "info");
}

/// Logs to stderr in `format`, at `RUST_LOG`, else at `default` (admin commands: `warn`, so
/// only what needs attention shows beside their output).
pub fn init_at(format: LogFormat, default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).init(),
    }
}
