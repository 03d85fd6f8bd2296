//! Swap triggers: the component file (or its signature) changing on disk, the policy's files
//! (component, signature, settings) changing, and SIGHUP, which reloads both.
//!
//! File events are debounced (editors and `cp` replace a file in several
//! steps), then the runtime reloads off the async workers. Whatever the outcome,
//! one log line says it; the runtime keeps the report for `/healthz`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::runtime::policy::Policy;
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
    let files = [path.to_owned(), crate::runtime::signature_path(path)];
    let watcher = watch_files(&files, tx.clone()).context("cannot watch the component file")?;
    on_sighup(tx);
    tokio::spawn(reload_loop(rx, runtime, tokens));
    Ok(Watch { _watcher: watcher })
}

/// Watches the policy's files (component, signature, settings) and SIGHUP, and reloads the
/// policy on either.
pub fn watch_policy(policy: Arc<Policy>) -> anyhow::Result<Watch> {
    let (tx, rx) = mpsc::unbounded_channel::<&'static str>();
    let watcher = watch_files(&policy.watched_files(), tx.clone()).context("cannot watch the policy's files")?;
    on_sighup(tx);
    tokio::spawn(policy_reload_loop(rx, policy));
    Ok(Watch { _watcher: watcher })
}

/// A watcher that sends "file changed" when any of `files` is written, replaced or removed.
/// It watches their directories: a file replaced by rename is a new inode, which a watch on
/// the file itself would miss.
fn watch_files(
    files: &[PathBuf],
    tx: mpsc::UnboundedSender<&'static str>,
) -> anyhow::Result<notify::RecommendedWatcher> {
    let mut wanted = Vec::new();
    for file in files {
        let dir = file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let dir = dir.canonicalize().with_context(|| format!("cannot find the directory of {}", file.display()))?;
        let name = file.file_name().with_context(|| format!("{} names no file", file.display()))?;
        wanted.push((dir.clone(), dir.join(name)));
    }
    let watched: Vec<PathBuf> = wanted.iter().map(|(_, path)| path.clone()).collect();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && !event.kind.is_access()
            && event.paths.iter().any(|p| watched.contains(p))
        {
            let _ = tx.send("file changed");
        }
    })?;
    let mut dirs: Vec<&PathBuf> = wanted.iter().map(|(dir, _)| dir).collect();
    dirs.dedup();
    for dir in dirs {
        watcher.watch(dir, RecursiveMode::NonRecursive).with_context(|| format!("cannot watch {}", dir.display()))?;
    }
    Ok(watcher)
}

/// Sends "SIGHUP" on each hangup. Installed before the host says it listens: a SIGHUP that
/// arrives early must reload, not end the process.
fn on_sighup(tx: mpsc::UnboundedSender<&'static str>) {
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
}

/// Waits for the next trigger, then until the triggers stop for a moment; SIGHUP wins over a
/// file change as the trigger named.
async fn next_trigger(rx: &mut mpsc::UnboundedReceiver<&'static str>) -> Option<&'static str> {
    let mut trigger = rx.recv().await?;
    while let Ok(Some(next)) = tokio::time::timeout(DEBOUNCE, rx.recv()).await {
        if next == "SIGHUP" {
            trigger = next;
        }
    }
    Some(trigger)
}

async fn policy_reload_loop(mut rx: mpsc::UnboundedReceiver<&'static str>, policy: Arc<Policy>) {
    while let Some(trigger) = next_trigger(&mut rx).await {
        let report = policy.reload().await;
        let active = policy.info();
        match report.outcome {
            ReloadOutcome::Published => {
                tracing::info!(
                    origin = ?active.origin,
                    load_ms = active.load_time.as_millis() as u64,
                    "swapped in a new policy"
                );
                audit::record(Event::PolicyPublished {
                    sha256: &active.sha256,
                    config: &active.config_sha256,
                    trigger,
                });
            }
            ReloadOutcome::Unchanged => {
                tracing::debug!(trigger, sha256 = %active.sha256, "the policy and its settings are unchanged");
                measure::policy_unchanged();
            }
            ReloadOutcome::Rejected { step, reason } => audit::record(Event::PolicyRejected {
                candidate: report.sha256.as_deref().unwrap_or("-"),
                step: &step.to_string(),
                reason: &reason,
                trigger,
            }),
        }
    }
}

async fn reload_loop(mut rx: mpsc::UnboundedReceiver<&'static str>, runtime: Arc<Runtime>, tokens: Arc<TokenConfig>) {
    while let Some(trigger) = next_trigger(&mut rx).await {
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
