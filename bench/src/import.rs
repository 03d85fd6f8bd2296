//! `host-server users import` of a large FastAPI table: its time and the command's peak
//! memory (the child's own `ru_maxrss`, read when it is reaped).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::host::{Host, target_dir};

/// A valid passlib PBKDF2 hash (the same for every row: the import reads its format).
const HASH: &str = "$pbkdf2-sha256$29000$N2YMIWQsBWBMae09x1jrPQ$1t8iyB2A.WF/Z5JZv.lfCIhXXN33N23OSgQYThBYRfk";

/// What one import took.
pub struct Measured {
    pub rows: u64,
    pub took: Duration,
    pub peak_rss: u64,
}

/// Imports `rows` accounts from a SQLite FastAPI table into a fresh host's database.
pub async fn measure(component: &Path, rows: u64) -> anyhow::Result<Measured> {
    let dir = tempfile::tempdir()?;
    let source = dir.path().join("sql_app.db");
    write_source(&source, rows).await?;
    let data = dir.path().join("data");
    std::fs::create_dir(&data)?;
    // A host makes the database (and its master key) first, as for every admin command.
    drop(Host::start(&data, component).await?);
    let mut command = Command::new(target_dir()?.join("release/host-server"));
    command
        .arg("--data-dir")
        .arg(&data)
        .arg("--component")
        .arg(component)
        .arg("--trusted-signers")
        .arg(target_dir()?.join("signing/dev.pub"))
        .args(["users", "import"])
        .arg(format!("sqlite://{}", source.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let started = Instant::now();
    let child = command.spawn().context("cannot start host-server users import")?;
    let (status, peak_rss) = tokio::task::spawn_blocking(move || reap(child.id())).await??;
    let took = started.elapsed();
    if status != 0 {
        bail!("the import of {rows} rows exited {status}");
    }
    Ok(Measured { rows, took, peak_rss })
}

/// Waits for process `pid` and returns its exit status and peak resident memory in bytes.
fn reap(pid: u32) -> anyhow::Result<(i32, u64)> {
    let mut status = 0;
    // SAFETY: an all-zero `rusage` is a valid value of that plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own child, not yet waited for; both pointers are to live locals.
    let reaped = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
    if reaped != pid as libc::pid_t {
        bail!("wait4 failed: {}", std::io::Error::last_os_error());
    }
    let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { -1 };
    Ok((code, u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024))
}

/// The FastAPI tutorial's `users` table with `rows` accounts, made by one SQL statement.
async fn write_source(path: &Path, rows: u64) -> anyhow::Result<()> {
    use sqlx::ConnectOptions;
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path).create_if_missing(true);
    let mut connection = options.connect().await?;
    sqlx::query(
        "CREATE TABLE users (id INTEGER NOT NULL PRIMARY KEY, email VARCHAR, username VARCHAR,
             hashed_password VARCHAR, is_active BOOLEAN)",
    )
    .execute(&mut connection)
    .await?;
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1)
         INSERT INTO users SELECT i, 'user' || i || '@example.com', 'user_' || i, $2, 1 FROM n",
    )
    .bind(i64::try_from(rows)?)
    .bind(HASH)
    .execute(&mut connection)
    .await?;
    Ok(())
}
