//! The database a test host runs on: SQLite in its data directory, or a fresh
//! database on the PostgreSQL server `just test` provides (`with-postgres`).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// The server the PostgreSQL tests create their databases on.
pub const POSTGRES_URL_VAR: &str = "LOOM_TEST_POSTGRES_URL";
/// Which backend the API suite runs on: `sqlite` (the default) or `postgres`.
pub const BACKEND_VAR: &str = "LOOM_TEST_BACKEND";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend `LOOM_TEST_BACKEND` names; SQLite when unset.
    pub fn from_env() -> Self {
        match std::env::var(BACKEND_VAR).as_deref() {
            Ok("postgres") => Self::Postgres,
            Ok("sqlite") | Err(_) => Self::Sqlite,
            Ok(other) => panic!("{BACKEND_VAR}={other}: expected sqlite or postgres"),
        }
    }
}

/// Whether this runs in CI (`CI=true`), where no PostgreSQL test may be left out.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The PostgreSQL server's URL, if there is one. Without one, outside CI, says
/// loudly that a PostgreSQL test does not run; under `CI=true`, fails.
pub fn postgres_server() -> Option<String> {
    if let Ok(url) = std::env::var(POSTGRES_URL_VAR)
        && !url.is_empty()
    {
        return Some(url);
    }
    assert!(!in_ci(), "{POSTGRES_URL_VAR} is not set: CI runs the PostgreSQL tests through `just test`");
    crate::skips::did_not_run(&format!(
        "{POSTGRES_URL_VAR} is not set (`just test` sets it when PostgreSQL is installed)"
    ));
    None
}

/// A host's database; clones share it, and a PostgreSQL one is dropped with the last.
#[derive(Clone, Debug)]
pub struct TestDatabase {
    pub url: String,
    _postgres: Option<Arc<PostgresDatabase>>,
}

impl TestDatabase {
    /// A fresh database on `backend`: SQLite in `data_dir`, or a new database on
    /// the PostgreSQL server (which must exist when the suite asks for it).
    pub fn fresh(backend: Backend, data_dir: &Path) -> Self {
        match backend {
            Backend::Sqlite => {
                Self { url: format!("sqlite://{}", data_dir.join("loom-auth.db").display()), _postgres: None }
            }
            Backend::Postgres => {
                let server = postgres_server().expect("the PostgreSQL suite runs with a server");
                Self::postgres(PostgresDatabase::create(&server))
            }
        }
    }

    pub fn postgres(database: PostgresDatabase) -> Self {
        Self { url: database.url.clone(), _postgres: Some(Arc::new(database)) }
    }
}

/// A database of its own on the PostgreSQL server, dropped with this value.
#[derive(Debug)]
pub struct PostgresDatabase {
    server: String,
    name: String,
    pub url: String,
}

impl PostgresDatabase {
    /// A fresh, empty database on `server` (a URL naming any database on it).
    pub fn create(server: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!("loom_test_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        run_sql(server, &format!("CREATE DATABASE {name}"));
        let base = server.rsplit_once('/').map_or(server, |(base, _)| base);
        Self { server: server.to_owned(), url: format!("{base}/{name}"), name }
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        run_sql(&self.server, &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
    }
}

/// Runs one statement on the database at `url`, on a runtime of its own (so
/// it works from sync code and from inside a test's runtime alike).
pub fn run_sql(url: &str, statement: &str) {
    let (url, statement) = (url.to_owned(), statement.to_owned());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        runtime.block_on(async {
            let result = if url.starts_with("sqlite:") {
                let pool = sqlx::SqlitePool::connect(&url).await.expect("the SQLite database opens");
                sqlx::query(&statement).execute(&pool).await.map(drop)
            } else {
                let pool = sqlx::PgPool::connect(&url).await.expect("the PostgreSQL server answers");
                sqlx::query(&statement).execute(&pool).await.map(drop)
            };
            result.unwrap_or_else(|error| panic!("{statement}: {error}"));
        });
    })
    .join()
    .expect("the statement ran");
}

/// The first column of the first row `query` returns on the database at `url`, as text.
pub fn query_one(url: &str, query: &str) -> String {
    let (url, query) = (url.to_owned(), query.to_owned());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        runtime.block_on(async {
            let result: Result<String, sqlx::Error> = if url.starts_with("sqlite:") {
                let pool = sqlx::SqlitePool::connect(&url).await.expect("the SQLite database opens");
                sqlx::query_scalar(&query).fetch_one(&pool).await
            } else {
                let pool = sqlx::PgPool::connect(&url).await.expect("the PostgreSQL server answers");
                sqlx::query_scalar(&query).fetch_one(&pool).await
            };
            result.unwrap_or_else(|error| panic!("{query}: {error}"))
        })
    })
    .join()
    .expect("the query ran")
}
