//! Throttle counters in the database, so every host on it shares them: login
//! attempts per account and per client address, registrations per address.
//!
//! Admission and counting are one statement (`INSERT … SELECT … WHERE count <
//! max`), so concurrent attempts cannot slip past the allowance together: SQLite
//! runs one writer at a time; on PostgreSQL the statement runs in a transaction
//! that first locks the table against other writers (on any host).

use super::{Backend, StoreError, UserStore};

/// Runs `$insert` (an `INSERT … SELECT … WHERE` under the allowance) so that no
/// other write to `$table` interleaves with its count; the rows it inserted.
macro_rules! insert_if_allowed {
    ($store:expr, $table:literal, $insert:expr) => {
        match &$store.backend {
            Backend::Sqlite { pool, .. } => $insert.execute(pool).await?.rows_affected(),
            Backend::Postgres(pool) => {
                let mut transaction = pool.begin().await?;
                sqlx::query(concat!("LOCK TABLE ", $table, " IN SHARE ROW EXCLUSIVE MODE"))
                    .execute(&mut *transaction)
                    .await?;
                let inserted = $insert.execute(&mut *transaction).await?.rows_affected();
                transaction.commit().await?;
                inserted
            }
        }
    };
}

/// How many events a key may have within a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance {
    pub max: u32,
    pub window_seconds: i64,
}

/// Whether an attempt may go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Go ahead; the attempt is counted.
    Admitted,
    /// Refused and not counted; the allowance frees up in this many seconds.
    Throttled { retry_after: u64 },
}

impl UserStore {
    /// Counts a login attempt on `account` from `address` at `now` (Unix
    /// seconds) if both are within their allowance.
    pub async fn admit_login(
        &self,
        account: &str,
        address: &str,
        now: i64,
        per_account: Allowance,
        per_address: Allowance,
    ) -> Result<Admission, StoreError> {
        let inserted = insert_if_allowed!(
            self,
            "login_attempts",
            sqlx::query(
                "INSERT INTO login_attempts (account, address, at) SELECT $1, $2, $3
                 WHERE (SELECT COUNT(*) FROM login_attempts WHERE account = $1 AND at > $3 - $4) < $5
                   AND (SELECT COUNT(*) FROM login_attempts WHERE address = $2 AND at > $3 - $6) < $7",
            )
            .bind(account)
            .bind(address)
            .bind(now)
            .bind(per_account.window_seconds)
            .bind(i64::from(per_account.max))
            .bind(per_address.window_seconds)
            .bind(i64::from(per_address.max))
        );
        if inserted == 1 {
            return Ok(Admission::Admitted);
        }
        let by_account = self.frees_in("login_attempts", "account", account, now, per_account).await?;
        let by_address = self.frees_in("login_attempts", "address", address, now, per_address).await?;
        Ok(Admission::Throttled { retry_after: by_account.max(by_address).max(1) })
    }

    /// Forgets `account`'s failed logins (after a successful one).
    pub async fn clear_login_failures(&self, account: &str) -> Result<(), StoreError> {
        with_pool!(self, pool => sqlx::query("DELETE FROM login_attempts WHERE account = $1")
            .bind(account)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(())
    }

    /// Counts a registration from `address` at `now` if it is within the allowance.
    pub async fn admit_signup(&self, address: &str, now: i64, allowance: Allowance) -> Result<Admission, StoreError> {
        let inserted = insert_if_allowed!(
            self,
            "signup_attempts",
            sqlx::query(
                "INSERT INTO signup_attempts (address, at) SELECT $1, $2
                 WHERE (SELECT COUNT(*) FROM signup_attempts WHERE address = $1 AND at > $2 - $3) < $4",
            )
            .bind(address)
            .bind(now)
            .bind(allowance.window_seconds)
            .bind(i64::from(allowance.max))
        );
        if inserted == 1 {
            return Ok(Admission::Admitted);
        }
        let retry_after = self.frees_in("signup_attempts", "address", address, now, allowance).await?;
        Ok(Admission::Throttled { retry_after: retry_after.max(1) })
    }

    /// Seconds until `key` in `table.column` is below its allowance again (0 when it is now).
    async fn frees_in(
        &self,
        table: &'static str,
        column: &'static str,
        key: &str,
        now: i64,
        allowance: Allowance,
    ) -> Result<u64, StoreError> {
        // One more fits once fewer than `max` remain in the window: when the
        // max-th newest attempt in it leaves.
        let query = format!(
            "SELECT at FROM {table} WHERE {column} = $1 AND at > $2 - $3 ORDER BY at DESC LIMIT 1 OFFSET $4 - 1"
        );
        let at: Option<i64> = with_pool!(self, pool => sqlx::query_scalar(&query)
            .bind(key)
            .bind(now)
            .bind(allowance.window_seconds)
            .bind(i64::from(allowance.max))
            .fetch_optional(pool)
            .await?);
        Ok(at.map_or(0, |at| u64::try_from(at + allowance.window_seconds - now).unwrap_or(0)))
    }

    /// Deletes counters that no window looks at any more.
    pub async fn purge_throttles(&self, now: i64, login_window: i64, signup_window: i64) -> Result<u64, StoreError> {
        let logins = with_pool!(self, pool => sqlx::query("DELETE FROM login_attempts WHERE at <= $1")
            .bind(now - login_window)
            .execute(pool)
            .await?
            .rows_affected());
        let signups = with_pool!(self, pool => sqlx::query("DELETE FROM signup_attempts WHERE at <= $1")
            .bind(now - signup_window)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(logins + signups)
    }
}
