//! `host-server users …` and `host-server keys …`: administration on the database the
//! settings point at, with no HTTP admin API to protect. Safe while hosts serve the same
//! database: they read an account's state on every request, and the keys every 5 seconds.
//! `host-server policy check` tries a policy component, without a database.

use anyhow::{Context, bail};

use crate::config::{Command, Config, KeyAlgorithm, KeysCommand, PolicyCommand};
use crate::store::{KeyChange, KeyState, UserStore};

/// How long an admin command waits for a database that does not answer.
const DATABASE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

mod policy;
mod users;

pub async fn run(config: &Config, command: &Command) -> anyhow::Result<()> {
    if let Command::Policy(PolicyCommand::Check { path, config: settings, emails, username }) = command {
        let check = policy::Check {
            path: path.clone(),
            config: settings.clone(),
            emails: emails.clone(),
            username: username.clone(),
        };
        return policy::check(config, check).await;
    }
    let store = open_store(config).await?;
    let outcome = match command {
        Command::Users(command) => users::run(config, &store, command).await,
        Command::Keys(keys) => run_keys(config, &store, keys).await,
        Command::Policy(_) => unreachable!("answered above, without a database"),
    };
    store.close().await;
    outcome
}

async fn open_store(config: &Config) -> anyhow::Result<UserStore> {
    let default_db = config.data_dir.join("loom-auth.db");
    if config.database_url.is_none() && !default_db.exists() {
        bail!(
            "there is no database at {}: give the --data-dir (or --database-url) the server uses",
            default_db.display()
        );
    }
    let url = config.database_url();
    let database = crate::store::describe_database(&url);
    // A host waits for its database as long as it takes; a command a person runs gives up.
    match tokio::time::timeout(DATABASE_PATIENCE, UserStore::open(&url, config.database_max_connections)).await {
        Ok(opened) => opened.with_context(|| format!("cannot open {database}")),
        Err(_) => bail!("{database} did not answer within {} seconds", DATABASE_PATIENCE.as_secs()),
    }
}

pub(crate) fn when(unix: i64) -> String {
    u64::try_from(unix)
        .map(|s| humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(s)))
        .map_or_else(|_| unix.to_string(), |t| t.to_string())
}

async fn run_keys(config: &Config, store: &UserStore, keys: &KeysCommand) -> anyhow::Result<()> {
    let now = crate::tokens::unix_now();
    match keys {
        KeysCommand::List => {
            let keys = store.signing_keys().await?;
            if keys.is_empty() {
                println!("No signing keys yet: a host makes the first one when it starts.");
                return Ok(());
            }
            let width = keys.iter().map(|k| k.kid.len()).max().unwrap_or(0).max(3);
            println!("{:width$}  {:9}  {:9}  CREATED", "KID", "ALGORITHM", "STATE");
            for key in keys {
                let note = if key.legacy { "  (legacy: tokens from before 0.2, without a kid)" } else { "" };
                let (kid, alg, state) = (&key.kid, &key.algorithm, key.state.as_str());
                println!("{kid:width$}  {alg:9}  {state:9}  {}{note}", when(key.created_at));
            }
        }
        KeysCommand::Rotate { alg } => {
            let alg = match alg {
                KeyAlgorithm::Eddsa => crate::runtime::Algorithm::Eddsa,
                KeyAlgorithm::Hs256 => crate::runtime::Algorithm::Hs256,
            };
            // The component makes the key, as on a host; the master key seals it.
            let runtime = crate::startup::start_runtime(config).await?;
            let master = crate::secret_files::load_or_create(
                &config.master_key_file(),
                crate::secret_files::SecretKind::Master,
            )?;
            let sealer = crate::keyring::seal::Sealer::new(&master);
            let before = store.signing_keys().await?;
            if let Some(stored) = before.iter().find(|k| k.state != KeyState::Retired) {
                sealer.open(&stored.kid, &stored.algorithm, &stored.sealed_private).with_context(|| {
                    format!("the master key {} does not open the stored keys", config.master_key_file().display())
                })?;
            }
            let key = crate::keyring::new_key(&sealer, &runtime, alg, KeyState::Active, now).await?;
            store.rotate_signing_key(&key).await?;
            let previous = before.iter().find(|k| k.state == KeyState::Active).map(|k| k.kid.as_str());
            println!("{} ({}) signs new tokens now.", key.kid, key.algorithm);
            if let Some(previous) = previous {
                println!("{previous} keeps verifying the tokens it signed; retire it once they have expired.");
            }
            println!("Running hosts pick the change up within 5 seconds.");
        }
        KeysCommand::Retire { kid } => match store.retire_signing_key(kid, now).await? {
            KeyChange::Done => {
                println!("Retired {kid}: tokens it signed are refused within 5 seconds on every host.")
            }
            KeyChange::NoSuchKey => bail!("there is no signing key {kid} (`host-server keys list` shows them)"),
            KeyChange::ActiveKey => {
                bail!("{kid} is the active key, which signs every new token: rotate to a new key first")
            }
        },
    }
    Ok(())
}
