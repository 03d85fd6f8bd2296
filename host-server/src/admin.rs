//! `host-server users …`: account administration on the database the settings
//! point at, with no HTTP admin API to protect. Safe while hosts serve the same
//! database: they read an account's state on every request.

use anyhow::{Context, bail};

use crate::config::{Command, Config, UsersCommand};
use crate::store::UserStore;

pub async fn run(config: &Config, command: &Command) -> anyhow::Result<()> {
    let Command::Users(users) = command;
    let default_db = config.data_dir.join("loom-auth.db");
    if config.database_url.is_none() && !default_db.exists() {
        bail!(
            "there is no database at {}: give the --data-dir (or --database-url) the server uses",
            default_db.display()
        );
    }
    let url = config.database_url();
    let store = UserStore::open(&url, config.database_max_connections)
        .await
        .with_context(|| format!("cannot open the database {}", crate::store::redact_url(&url)))?;
    match users {
        UsersCommand::List => {
            let users = store.list_users().await?;
            let width = users.iter().map(|(u, _)| u.email.chars().count()).max().unwrap_or(0).max(5);
            let names =
                users.iter().filter_map(|(u, _)| u.username.as_ref()).map(String::len).max().unwrap_or(0).max(8);
            println!("{:>6}  {:width$}  {:names$}  {:8}  CREATED", "ID", "EMAIL", "USERNAME", "ACTIVE");
            for (user, created_at) in users {
                let created = u64::try_from(created_at)
                    .map(|s| {
                        humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(s))
                    })
                    .map_or_else(|_| created_at.to_string(), |t| t.to_string());
                let active = if user.is_active { "yes" } else { "no" };
                let username = user.username.as_deref().unwrap_or("-");
                println!("{:>6}  {:width$}  {username:names$}  {active:8}  {created}", user.id, user.email);
            }
        }
        UsersCommand::Deactivate { email } | UsersCommand::Activate { email } => {
            let active = matches!(users, UsersCommand::Activate { .. });
            if !store.set_active(email, active, crate::tokens::unix_now()).await? {
                bail!("there is no account with the email {email}");
            }
            let done = if active { "Activated" } else { "Deactivated" };
            println!("{done} {email}");
        }
    }
    store.close().await;
    Ok(())
}
