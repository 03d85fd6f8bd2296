//! Swap triggers: the component file (or its signature) changing on disk, and SIGHUP.
//!
//! File events are debounced (editors and `cp` replace a file in several
//! steps), then the runtime reloads off the async workers. Whatever the outcome,
//! one log line says it; the runtime keeps the report for `/healthz`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::runtime::{ReloadOutcome, Runtime};
use crate::telemetry::audit::{self, Event};
use crate::telemetry::measure;
use crate::tokens::TokenConfig;

/// Quiet time after the last file event before reloading. Short: a reload of a
/// half-written file is refused by the gate, and the write's next event retries.
const DEBOUNCE: Duration = Duration::from_millis(25);

/// Keeps the file watcher alive; dropping it stops watching.
pub struct Watch {
    _watcher: notify::RecommendedWatcher,
}

/// Watches `runtime`'s component file and SIGHUP, and reloads on either.
pub fn watch(path: &Path, runtime: Arc<Runtime>, tokens: Arc<TokenConfig>) -> anyhow::Result<Watch> {
    let (tx, rx) = mpsc::unbounded_channel::<&'static str>();
    // Watch the directory: a file replaced by rename is a new inode, which a
    // watch on the file itself would miss.
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_owned();
    let name = path.file_name().context("the component path names no file")?.to_owned();
    let signature = crate::runtime::signature_path(path).file_name().map(ToOwned::to_owned);
    let file_tx = tx.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && !event.kind.is_access()
            && event.paths.iter().any(|p| p.file_name() == Some(&name) || p.file_name() == signature.as_deref())
        {
            let _ = file_tx.send("file changed");
        }
    })
    .context("cannot watch the component file")?;
    watcher.watch(&dir, RecursiveMode::NonRecursive).with_context(|| format!("cannot watch {}", dir.display()))?;

    // Installed before this returns (so before the host says it listens): a
    // SIGHUP that arrives early must reload, not end the process.
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(mut hangups) => {
            tokio::spawn(async move {
                while hangups.recv().await.is_some() {
                    let _ = tx.send("SIGHUP");
                }
            });
        }
        Err(error) => tracing::warn!(%error, "cannot listen for SIGHUP; reloads follow file changes only"),
    }
    tokio::spawn(reload_loop(rx, runtime, tokens));
    Ok(Watch { _watcher: watcher })
}

async fn reload_loop(mut rx: mpsc::UnboundedReceiver<&'static str>, runtime: Arc<Runtime>, tokens: Arc<TokenConfig>) {
    while let Some(mut trigger) = rx.recv().await {
        // Debounce: wait until the triggers stop for a moment.
        while let Ok(Some(next)) = tokio::time::timeout(DEBOUNCE, rx.recv()).await {
            if next == "SIGHUP" {
                trigger = next;
            }
        }
        if trigger == "SIGHUP" {
            // SIGHUP also re-reads the signing keys at once.
            tokens.keys.nudge.notify_one();
        }
        let report = runtime.reload(&tokens.settings()).await;
        let active = runtime.info();
        match report.outcome {
            ReloadOutcome::Published => {
                tracing::info!(
                    origin = ?active.origin,
                    load_ms = active.load_time.as_millis() as u64,
                    "swapped in a new auth component"
                );
                audit::record(Event::ComponentPublished {
                    sha256: &active.sha256,
                    wit_version: &active.wit_version,
                    trigger,
                });
            }
            ReloadOutcome::Unchanged => {
                tracing::debug!(trigger, sha256 = %active.sha256, "the auth component is unchanged");
                measure::reload_unchanged();
            }
            ReloadOutcome::Rejected { step, reason } => audit::record(Event::ComponentRejected {
                candidate: report.sha256.as_deref().unwrap_or("-"),
                step: &step.to_string(),
                reason: &reason,
                trigger,
            }),
        }
    }
}
