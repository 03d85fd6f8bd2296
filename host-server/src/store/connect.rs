//! Opening either database: which one a URL names, pool settings, migrations,
//! and for PostgreSQL, retries with backoff while the server does not answer.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::readers::Readers;
use super::{Backend, StoreError};

/// How long a query waits for a free connection before the request gets `503`.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// Waits between attempts to reach a PostgreSQL server at start: doubling up to the cap.
const FIRST_RETRY: Duration = Duration::from_millis(250);
const MAX_RETRY: Duration = Duration::from_secs(10);

/// The databases a URL may name.
pub(super) enum Kind {
    Sqlite,
    Postgres,
}

impl Kind {
    pub fn of(url: &str) -> Result<Self, StoreError> {
        let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" => Ok(Self::Sqlite),
            "postgres" | "postgresql" => Ok(Self::Postgres),
            _ => Err(StoreError::Url {
                url: redact(url),
                reason: "expected sqlite://PATH or postgres://USER@HOST/DATABASE".into(),
            }),
        }
    }
}

/// The SQLite database at `url` (created if missing) in WAL mode with foreign
/// keys on, migrated, with inline readers when it is a file.
pub(super) async fn sqlite(url: &str, max_connections: u32) -> Result<Backend, StoreError> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|error| StoreError::Url { url: redact(url), reason: error.to_string() })?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5));
    let file = options.get_filename().to_owned();
    let pool = SqlitePoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await?;
    sqlx::migrate!("migrations/sqlite").run(&pool).await?;
    let readers = if file.is_file() {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Some(Arc::new(Readers::open(&file, cores).map_err(StoreError::Readers)?))
    } else {
        None
    };
    Ok(Backend::Sqlite { pool, readers })
}

/// The PostgreSQL database at `url`, migrated (under sqlx's advisory lock, so
/// hosts starting together migrate once). While the server does not answer,
/// keeps trying with backoff and says so; a refusal (a wrong password, a
/// missing database) fails at once.
pub(super) async fn postgres(url: &str, max_connections: u32) -> Result<Backend, StoreError> {
    let options = PgConnectOptions::from_str(url)
        .map_err(|error| StoreError::Url { url: redact(url), reason: error.to_string() })?;
    let pool_options = PgPoolOptions::new().max_connections(max_connections).acquire_timeout(ACQUIRE_TIMEOUT);
    let mut wait = FIRST_RETRY;
    let pool = loop {
        match pool_options.clone().connect_with(options.clone()).await {
            Ok(pool) => break pool,
            Err(error) if is_unavailable(&error) => {
                tracing::warn!(url = %redact(url), %error, "the database does not answer; trying again in {wait:?}");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(MAX_RETRY);
            }
            Err(error) => return Err(error.into()),
        }
    };
    sqlx::migrate!("migrations/postgres").run(&pool).await?;
    Ok(Backend::Postgres(pool))
}

/// Whether `error` means the database could not be reached, rather than that
/// it refused or failed an operation.
pub(super) fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        // PostgreSQL: class 08 (connection exception), the server shutting down
        // or starting (57P01-57P03), too many connections (53300).
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02" | "57P03" | "53300")
        }),
        _ => false,
    }
}

/// `url` with any password replaced by `***`, for messages and logs.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            let hidden = if user.len() < userinfo.len() { format!("{user}:***") } else { user.to_owned() };
            format!("{scheme}://{hidden}@{host}{path}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_leave_a_url() {
        assert_eq!(redact("postgres://loom:s3cret@db:5432/loom"), "postgres://loom:***@db:5432/loom");
        assert_eq!(
            redact("postgres://loom:p@ss@db/loom?sslmode=require"),
            "postgres://loom:***@db/loom?sslmode=require"
        );
        assert_eq!(redact("postgres://loom@db/loom"), "postgres://loom@db/loom");
        assert_eq!(redact("sqlite:///var/lib/loom/auth.db"), "sqlite:///var/lib/loom/auth.db");
    }

    #[test]
    fn urls_name_their_database() {
        assert!(matches!(Kind::of("sqlite://data/loom-auth.db"), Ok(Kind::Sqlite)));
        assert!(matches!(Kind::of("postgres://loom@localhost/loom"), Ok(Kind::Postgres)));
        assert!(matches!(Kind::of("PostgreSQL://loom@localhost/loom"), Ok(Kind::Postgres)));
        let refused = Kind::of("mysql://root:hunter2@db/loom").err().unwrap().to_string();
        assert!(refused.contains("expected sqlite://") && !refused.contains("hunter2"), "{refused}");
    }
}
