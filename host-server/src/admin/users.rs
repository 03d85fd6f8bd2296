//! `host-server users …`: list, deactivate, activate, import.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::StreamExt;
use secrecy::SecretString;

use super::when;
use crate::accounts::password::HashFormat;
use crate::config::{Config, UsersCommand};
use crate::import::{Planner, Verdict};
use crate::store::UserStore;
use crate::telemetry::audit::{self, Event};

pub async fn run(config: &Config, store: &UserStore, command: &UsersCommand) -> anyhow::Result<()> {
    match command {
        UsersCommand::List { hash_formats: false } => list(store).await,
        UsersCommand::List { hash_formats: true } => hash_formats(store).await,
        UsersCommand::Deactivate { email } => set_active(store, email, false).await,
        UsersCommand::Activate { email } => set_active(store, email, true).await,
        UsersCommand::ResetTwoFactor { email } => reset_two_factor(store, email).await,
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
    // Its personal access tokens end with it (counted first; the deactivation then ends any
    // made meanwhile), so a later activation brings none back.
    let tokens = if active { 0 } else { store.revoke_pats_of(user.id, now).await? };
    store.set_active(email, active, now).await?;
    if active {
        println!("Activated {email}");
    } else {
        // Its sessions end with it, refresh tokens included, on every host at once.
        let ended = store.revoke_sessions_of(user.id, None, now).await?;
        audit::record(Event::SessionRevoked { user_id: user.id, client: None, how: "deactivation", count: ended });
        audit::record(Event::PatRevoked { user_id: user.id, client: None, how: "deactivation", count: tokens });
        let sessions = if ended == 1 { "session" } else { "sessions" };
        let pats = if tokens == 1 { "personal access token" } else { "personal access tokens" };
        println!("Deactivated {email} (ended {ended} {sessions} and {tokens} {pats})");
    }
    Ok(())
}

async fn reset_two_factor(store: &UserStore, email: &str) -> anyhow::Result<()> {
    let Some(user) = store.user_by_email(email).await? else {
        bail!("there is no account with the email {email}");
    };
    if !store.remove_second_factor(user.id).await? {
        println!("{email} has no two-factor login; nothing changed");
        return Ok(());
    }
    audit::record(Event::MfaDisabled { user_id: user.id, client: None, how: "reset-2fa" });
    println!("Turned off two-factor login for {email}: the password alone logs in until it is turned on again");
    Ok(())
}

/// Accounts written to the database at a time: memory stays bounded whatever the table's size.
const IMPORT_BATCH: usize = 2_000;

/// Reads the old service's users as a stream, twice, in one read transaction. The first pass
/// decides each row and finds the formats (with their costs) of the hashes to import, which
/// the component checks, one hash each: a format it cannot check here (within its memory, and
/// in half its deadline) is refused. The second decides the rows again (the same way) and
/// reports every row that is not simply imported, writing the rest, a batch at a time, in one
/// transaction (not in a dry run). No row is held past its batch: what grows with the table is
/// the few dozen bytes per row that uniqueness takes.
async fn import(config: &Config, store: &UserStore, source: &str, dry_run: bool) -> anyhow::Result<()> {
    let described = crate::store::describe_database(source);
    let unreadable = || format!("cannot read the users of {described}");
    let mut source = crate::store::source::LegacySource::open(source).await.with_context(unreadable)?;
    let existing = store.account_keys().await?;
    // The first pass: one hash of each format to import.
    let mut formats: BTreeMap<String, String> = BTreeMap::new();
    let mut planner = Planner::new(&existing);
    let mut rows = source.rows();
    while let Some(row) = rows.next().await {
        let planned = planner.decide(&row.with_context(unreadable)?);
        if let (Some(format), Some(account)) = (planned.format(), &planned.account) {
            formats.entry(format).or_insert_with(|| account.hashed_password.clone());
        }
    }
    drop((rows, planner));
    let refused_formats = check_formats(config, formats).await?;
    // The second pass: the same decisions, reported and written.
    let mut planner = Planner::new(&existing);
    let mut writer = if dry_run { None } else { Some(store.begin_import().await?) };
    let (mut imported, mut here, mut refused, mut total) = (0usize, 0usize, 0usize, 0usize);
    let mut batch = Vec::with_capacity(IMPORT_BATCH);
    let mut rows = source.rows();
    loop {
        let row = rows.next().await.transpose().with_context(unreadable)?;
        if let Some(row) = &row {
            let mut planned = planner.decide(row);
            if let Some((format, why)) = planned.format().and_then(|f| refused_formats.get_key_value(&f)) {
                planned.refuse_format(format, why);
            }
            total += 1;
            match &planned.verdict {
                Verdict::Import => imported += 1,
                Verdict::AlreadyHere => here += 1,
                Verdict::Refused(why) => {
                    refused += 1;
                    println!("row {}: refused: {why}", planned.label);
                }
            }
            if let Some(warning) = &planned.warning {
                println!("row {}: warning: {warning}", planned.label);
            }
            batch.extend(planned.account);
        }
        if let Some(writer) = writer.as_mut().filter(|_| batch.len() >= IMPORT_BATCH || row.is_none()) {
            writer.write(&batch).await.context("the import was not written (nothing of it was)")?;
            batch.clear();
        }
        if row.is_none() {
            break;
        }
    }
    drop(rows);
    source.close().await;
    if let Some(writer) = writer.filter(|_| imported > 0) {
        writer.commit().await.context("the import was not written (nothing of it was)")?;
    }
    let verb = if dry_run { "Would import" } else { "Imported" };
    match imported {
        0 => println!("Nothing new to import from {described}: {here} here already, {refused} refused."),
        _ => println!("{verb} {imported} accounts from {described}; {here} here already, {refused} refused."),
    }
    if refused > 0 {
        bail!("{refused} of {total} rows were refused (see above)");
    }
    Ok(())
}

/// Has the component check one hash of each format (`formats`: its description, one of its
/// hashes), printing each one's time; the formats it cannot check here, each with why.
async fn check_formats(config: &Config, formats: BTreeMap<String, String>) -> anyhow::Result<HashMap<String, String>> {
    let mut refused = HashMap::new();
    if formats.is_empty() {
        return Ok(refused);
    }
    let runtime = crate::startup::start_runtime(config).await?;
    let limit = Duration::from_millis(config.hash_deadline_ms) / 2;
    for (format, hash) in formats {
        let started = Instant::now();
        let checked = runtime.verify_password(SecretString::from("not the password"), hash).await;
        let took = started.elapsed();
        let why = match checked {
            Ok(_) if took <= limit => {
                println!("{format}: {} ms per check here", took.as_millis());
                continue;
            }
            Ok(_) => format!(
                "takes {} ms to check here, more than half of --hash-deadline-ms {}",
                took.as_millis(),
                config.hash_deadline_ms
            ),
            Err(error) => {
                tracing::debug!(%error, format, "the component could not check a hash to import");
                // A deadline ends a check late; running out of memory, early.
                if took >= limit {
                    format!("takes more than --hash-deadline-ms {} to check here", config.hash_deadline_ms)
                } else {
                    format!(
                        "cannot be checked by the component here (within --guest-memory-mib {})",
                        config.guest_memory_mib
                    )
                }
            }
        };
        refused.insert(format, why);
    }
    Ok(refused)
}
