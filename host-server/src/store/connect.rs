//! Opening either database: which one a URL names, pool settings, migrations,
//! and for PostgreSQL, retries with backoff while the server does not answer.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::outage::is_unavailable;
use super::pg_readers::PgReaders;
use super::readers::Readers;
use super::standing::STANDING_MANY;
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
    fn of_scheme(url: &str) -> Option<Self> {
        let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" => Some(Self::Sqlite),
            "postgres" | "postgresql" => Some(Self::Postgres),
            _ => None,
        }
    }

    pub fn of(url: &str) -> Result<Self, StoreError> {
        match Self::of_scheme(url) {
            Some(kind) => Ok(kind),
            None => Err(StoreError::Url {
                reason: "the database URL must be sqlite://PATH or postgres://USER@HOST/DATABASE".into(),
            }),
        }
    }
}

/// The SQLite database at `url` (created if missing) in WAL mode with foreign
/// keys on, migrated, with inline readers when it is a file.
pub(super) async fn sqlite(url: &str, max_connections: u32) -> Result<Backend, StoreError> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|_| StoreError::Url { reason: "the database URL is not a valid sqlite:// URL".into() })?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5));
    let file = options.get_filename().to_owned();
    owner_only(&file).map_err(|error| StoreError::Database(sqlx::Error::Io(error)))?;
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

/// Makes the database file (created now if missing) and its WAL and shared-memory files
/// readable by their owner only: they hold password hashes and sessions. SQLite gives the
/// WAL and shared-memory files the database file's mode when it creates them.
fn owner_only(file: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if file.as_os_str().is_empty() || file.to_str() == Some(":memory:") {
        return Ok(());
    }
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(file) {
        Ok(_) => return Ok(()),
        Err(error) if error.kind() != std::io::ErrorKind::AlreadyExists => return Err(error),
        Err(_) => {}
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut name = file.as_os_str().to_owned();
        name.push(suffix);
        let path = Path::new(&name);
        match std::fs::metadata(path) {
            Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
                tracing::info!(path = %path.display(), "made the database file readable by its owner only (0600)");
            }
            _ => {}
        }
    }
    Ok(())
}

/// The PostgreSQL database at `url`, migrated (under sqlx's advisory lock, so
/// hosts starting together migrate once). While the server does not answer,
/// keeps trying with backoff and says so; a refusal (a wrong password, a
/// missing database) fails at once.
pub(super) async fn postgres(url: &str, max_connections: u32) -> Result<Backend, StoreError> {
    // The parser's own message may quote the URL, password included: say what is wrong in general.
    let options = PgConnectOptions::from_str(url).map_err(|_| StoreError::Url {
        reason: "the database URL is not a valid postgres:// URL (check each part; in a password, `/`, `@`, `:` \
                 and `%` must be percent-encoded)"
            .into(),
    })?;
    let readers = reader_count(max_connections);
    let pool_options = PgPoolOptions::new().max_connections(max_connections - readers).acquire_timeout(ACQUIRE_TIMEOUT);
    let mut wait = FIRST_RETRY;
    let pool = loop {
        match pool_options.clone().connect_with(options.clone()).await {
            Ok(pool) => break pool,
            Err(error) if is_unavailable(&error) => {
                tracing::warn!(database = %describe(url), %error, "the database does not answer; trying again in {wait:?}");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(MAX_RETRY);
            }
            Err(error) => return Err(error.into()),
        }
    };
    sqlx::migrate!("migrations/postgres").run(&pool).await?;
    let readers = (readers > 0).then(|| Arc::new(PgReaders::new(options, readers as usize, STANDING_MANY)));
    Ok(Backend::Postgres { pool, readers })
}

/// How many of the host's `max_connections` the PostgreSQL standing lookup keeps for itself:
/// one per two cores, at most half; none when only one connection is allowed (the lookup then
/// goes through the pool). Each carries one batched statement at a time, and the server's cost
/// is mostly per statement, so fewer readers answer more: on 2 cores, one reader served
/// `/users/me/` at 41,000-43,000 req/s, two at 29,000-33,000, four at 27,000 (`just bench`).
fn reader_count(max_connections: u32) -> u32 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    (cores / 2).max(1).min(max_connections / 2)
}

/// What a database URL names, for messages and logs: the PostgreSQL server's host, port and
/// database, or the SQLite file; never the URL itself, which may hold a password in its user
/// part, in its query (`?password=`), or anywhere when it is malformed.
pub fn describe(url: &str) -> String {
    match Kind::of_scheme(url) {
        Some(Kind::Postgres) => match PgConnectOptions::from_str(url) {
            Ok(options) => format!(
                "the PostgreSQL database {} on {}:{}",
                options.get_database().unwrap_or("(default)"),
                options.get_host(),
                options.get_port()
            ),
            Err(_) => "a PostgreSQL database (its URL is not shown: it may hold a password)".into(),
        },
        // SQLite takes no user or password, but a URL may still carry one (`sqlite://u:pw@host/…`).
        Some(Kind::Sqlite) if url.contains('@') => {
            "a SQLite database (its URL is not shown: it may hold a password)".into()
        }
        Some(Kind::Sqlite) => match SqliteConnectOptions::from_str(url) {
            Ok(options) => format!("the SQLite database {}", options.get_filename().display()),
            Err(_) => "a SQLite database (its URL is not shown)".into(),
        },
        None => "a database (its URL is not shown: it may hold a password)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_is_described_never_by_its_url() {
        assert_eq!(describe("postgres://loom:s3cret@db:5432/loom"), "the PostgreSQL database loom on db:5432");
        assert!(!describe("sqlite://admin:s3cret@localhost/tmp/x.db").contains("s3cret"));
        assert!(!describe("sqlite://:s3cret@/tmp/x.db").contains("s3cret"));
        assert_eq!(describe("postgres://loom@db/loom?password=s3cret"), "the PostgreSQL database loom on db:5432");
        assert_eq!(
            describe("postgres://loom:p%40ss@db/loom?sslmode=require"),
            "the PostgreSQL database loom on db:5432"
        );
        assert_eq!(describe("sqlite:///var/lib/loom/auth.db"), "the SQLite database /var/lib/loom/auth.db");
        for secret in ["postgres://loom:s3/cret@db/loom", "postgres://loom:s3cret:x@db/loom", "mysql://root:s3cret@db"]
        {
            let said = describe(secret);
            assert!(!said.contains("s3") && !said.contains("cret"), "{secret} -> {said}");
        }
        let refused = sqlite_or_postgres_error("postgres://loom:s3/cret@db/loom");
        assert!(!refused.contains("s3"), "{refused}");
    }

    fn sqlite_or_postgres_error(url: &str) -> String {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(super::super::UserStore::open(url, 1))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn urls_name_their_database() {
        assert!(matches!(Kind::of("sqlite://data/loom-auth.db"), Ok(Kind::Sqlite)));
        assert!(matches!(Kind::of("postgres://loom@localhost/loom"), Ok(Kind::Postgres)));
        assert!(matches!(Kind::of("PostgreSQL://loom@localhost/loom"), Ok(Kind::Postgres)));
        let refused = Kind::of("mysql://root:hunter2@db/loom").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(refused.contains("must be sqlite://PATH") && !refused.contains("hunter2"), "{refused}");
    }
}
