//! `host-server users …`: list, deactivate, activate, import.

use std::collections::BTreeMap;

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use secrecy::SecretString;

use super::when;
use crate::config::{Config, UsersCommand};
use crate::import::Verdict;
use crate::password::HashFormat;
use crate::store::UserStore;
use crate::telemetry::audit::{self, Event};

pub async fn run(config: &Config, store: &UserStore, command: &UsersCommand) -> anyhow::Result<()> {
    match command {
        UsersCommand::List { hash_formats: false } => list(store).await,
        UsersCommand::List { hash_formats: true } => hash_formats(store).await,
        UsersCommand::Deactivate { email } => set_active(store, email, false).await,
        UsersCommand::Activate { email } => set_active(store, email, true).await,
        UsersCommand::Import { source, dry_run } => import(config, store, source, *dry_run).await,
    }
}

async fn list(store: &UserStore) -> anyhow::Result<()> {
    let users = store.list_users().await?;
    let width = users.iter().map(|(u, _)| u.email.chars().count()).max().unwrap_or(0).max(5);
    let names = users.iter().filter_map(|(u, _)| u.username.as_ref()).map(String::len).max().unwrap_or(0).max(8);
    println!("{:>6}  {:width$}  {:names$}  {:8}  CREATED", "ID", "EMAIL", "USERNAME", "ACTIVE");
    for (user, created_at) in users {
        let active = if user.is_active { "yes" } else { "no" };
        let username = user.username.as_deref().unwrap_or("-");
        println!("{:>6}  {:width$}  {username:names$}  {active:8}  {}", user.id, user.email, when(created_at));
    }
    Ok(())
}

/// How many accounts carry each hash format and cost: the ones an import brought shrink as
/// their owners log in.
async fn hash_formats(store: &UserStore) -> anyhow::Result<()> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    store
        .hashes_not_starting_with("", |hash| {
            let format =
                HashFormat::of(hash).map_or_else(|_| "unreadable (cannot log in)".to_owned(), |f| f.describe());
            *counts.entry(format).or_default() += 1;
        })
        .await?;
    println!("{:>8}  FORMAT", "ACCOUNTS");
    for (format, count) in counts {
        println!("{count:>8}  {format}");
    }
    Ok(())
}

async fn set_active(store: &UserStore, email: &str, active: bool) -> anyhow::Result<()> {
    let now = crate::tokens::unix_now();
    let Some(user) = store.user_by_email(email).await? else {
        bail!("there is no account with the email {email}");
    };
    store.set_active(email, active, now).await?;
    if active {
        println!("Activated {email}");
    } else {
        // Its sessions end with it, refresh tokens included, on every host at once.
        let ended = store.revoke_sessions_of(user.id, None, now).await?;
        audit::record(Event::SessionRevoked { user_id: user.id, client: None, how: "deactivation", count: ended });
        let sessions = if ended == 1 { "session" } else { "sessions" };
        println!("Deactivated {email} (ended {ended} {sessions})");
    }
    Ok(())
}

/// Reads the old service's users, decides each row, has the component check one hash of
/// each format to import (a format it cannot check here, within its memory and in half its
/// deadline, is refused), reports every row that is not simply imported, and writes the rest in
/// one transaction (not in a dry run).
async fn import(config: &Config, store: &UserStore, source: &str, dry_run: bool) -> anyhow::Result<()> {
    let described = crate::store::describe_database(source);
    let rows = crate::store::source::legacy_users(source)
        .await
        .with_context(|| format!("cannot read the users of {described}"))?;
    let mut plan = crate::import::plan(&rows, &store.account_keys().await?);
    let formats = plan.formats().into_iter().map(|(format, hash)| (format, hash.to_owned())).collect::<Vec<_>>();
    if !formats.is_empty() {
        let runtime = crate::startup::start_runtime(config).await?;
        let limit = Duration::from_millis(config.hash_deadline_ms) / 2;
        for (format, hash) in formats {
            let started = Instant::now();
            let checked = runtime.verify_password(SecretString::from("not the password"), hash).await;
            let took = started.elapsed();
            match checked {
                Ok(_) if took <= limit => println!("{format}: {} ms per check here", took.as_millis()),
                Ok(_) => plan.refuse_format(
                    &format,
                    &format!(
                        "takes {} ms to check here, more than half of --hash-deadline-ms {}",
                        took.as_millis(),
                        config.hash_deadline_ms
                    ),
                ),
                Err(error) => {
                    tracing::debug!(%error, format, "the component could not check a hash to import");
                    // A deadline ends a check late; running out of memory, early.
                    let why = if took >= limit {
                        format!("takes more than --hash-deadline-ms {} to check here", config.hash_deadline_ms)
                    } else {
                        format!(
                            "cannot be checked by the component here (within --guest-memory-mib {})",
                            config.guest_memory_mib
                        )
                    };
                    plan.refuse_format(&format, &why);
                }
            }
        }
    }
    for row in &plan.rows {
        if let Verdict::Refused(why) = &row.verdict {
            println!("row {}: refused: {why}", row.label);
        }
        if let Some(warning) = &row.warning {
            println!("row {}: warning: {warning}", row.label);
        }
    }
    let (imported, here, refused) = (
        plan.count(|v| *v == Verdict::Import),
        plan.count(|v| *v == Verdict::AlreadyHere),
        plan.count(|v| matches!(v, Verdict::Refused(_))),
    );
    if !dry_run && !plan.accounts.is_empty() {
        store.import_users(&plan.accounts).await.context("the import was not written (nothing of it was)")?;
    }
    let verb = if dry_run { "Would import" } else { "Imported" };
    match imported {
        0 => println!("Nothing new to import from {described}: {here} here already, {refused} refused."),
        _ => println!("{verb} {imported} accounts from {described}; {here} here already, {refused} refused."),
    }
    if refused > 0 {
        bail!("{refused} of {} rows were refused (see above)", plan.rows.len());
    }
    Ok(())
}
