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
            Backend::Postgres { pool, .. } => {
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
    /// Refused and not counted: the allowance is spent, and frees up in this many seconds.
    Throttled { retry_after: u64 },
    /// Refused and not counted: the allowance is taken by attempts still running (a burst of
    /// logins at the same instant), which end within seconds, successful or not.
    Crowded { on: Crowd },
}

/// Which allowance attempts in flight fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crowd {
    Account,
    Address,
}

/// A login attempt, as counted: an id of its own (random), the account it names, the
/// client's address.
#[derive(Debug, Clone)]
pub struct LoginAttempt {
    pub id: i64,
    pub account: String,
    pub address: String,
}

/// An attempt admitted but not settled for this long counts as a failure: its host stopped
/// before it could say how it ended (a cancelled request settles at once).
pub const UNSETTLED_COUNTS_AFTER_SECONDS: i64 = 60;

impl UserStore {
    /// Counts `attempt` at `now` (Unix seconds), in flight, if its account and address are
    /// both within their allowance. Attempts in flight count as attempts (parallel guesses
    /// cannot slip past together); a refusal says whether settled failures or attempts in
    /// flight filled the allowance.
    pub async fn admit_login(
        &self,
        attempt: &LoginAttempt,
        now: i64,
        per_account: Allowance,
        per_address: Allowance,
    ) -> Result<Admission, StoreError> {
        let (account, address) = (attempt.account.as_str(), attempt.address.as_str());
        let inserted = insert_if_allowed!(
            self,
            "login_attempts",
            sqlx::query(
                "INSERT INTO login_attempts (account, address, at, attempt, settled) SELECT $1, $2, $3, $8, FALSE
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
            .bind(attempt.id)
        );
        if inserted == 1 {
            return Ok(Admission::Admitted);
        }
        let account_failures = self.failures("account", account, now, per_account).await?;
        let address_failures = self.failures("address", address, now, per_address).await?;
        if account_failures < i64::from(per_account.max) && address_failures < i64::from(per_address.max) {
            let account_full = self.attempts("account", account, now, per_account).await? >= i64::from(per_account.max);
            return Ok(Admission::Crowded { on: if account_full { Crowd::Account } else { Crowd::Address } });
        }
        let by_account = self.frees_in("login_attempts", "account", account, now, per_account).await?;
        let by_address = self.frees_in("login_attempts", "address", address, now, per_address).await?;
        Ok(Admission::Throttled { retry_after: by_account.max(by_address).max(1) })
    }

    /// Records that the admitted attempt `id` failed: it now counts as a failure for the window.
    pub async fn settle_login_attempt(&self, id: i64) -> Result<(), StoreError> {
        with_pool!(self, pool => sqlx::query("UPDATE login_attempts SET settled = TRUE WHERE attempt = $1")
            .bind(id)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(())
    }

    /// Forgets the attempt `id` (taken back: neither a failure nor a success).
    pub async fn withdraw_login_attempt(&self, id: i64) -> Result<(), StoreError> {
        with_pool!(self, pool => sqlx::query("DELETE FROM login_attempts WHERE attempt = $1")
            .bind(id)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(())
    }

    /// Login attempts on `key` (in `column`) within the window.
    async fn attempts(
        &self,
        column: &'static str,
        key: &str,
        now: i64,
        allowance: Allowance,
    ) -> Result<i64, StoreError> {
        let query = format!("SELECT COUNT(*) FROM login_attempts WHERE {column} = $1 AND at > $2 - $3");
        Ok(with_pool!(self, pool => sqlx::query_scalar(&query)
            .bind(key)
            .bind(now)
            .bind(allowance.window_seconds)
            .fetch_one(pool)
            .await?))
    }

    /// Failed login attempts on `key` (in `column`) within the window: settled ones, and
    /// unsettled ones older than [`UNSETTLED_COUNTS_AFTER_SECONDS`].
    async fn failures(
        &self,
        column: &'static str,
        key: &str,
        now: i64,
        allowance: Allowance,
    ) -> Result<i64, StoreError> {
        let query = format!(
            "SELECT COUNT(*) FROM login_attempts WHERE {column} = $1 AND at > $2 - $3 AND (settled OR at <= $2 - $4)"
        );
        Ok(with_pool!(self, pool => sqlx::query_scalar(&query)
            .bind(key)
            .bind(now)
            .bind(allowance.window_seconds)
            .bind(UNSETTLED_COUNTS_AFTER_SECONDS)
            .fetch_one(pool)
            .await?))
    }

    /// Forgets the failed logins under `names` (an account's email and username keys, after a
    /// successful login).
    pub async fn clear_login_failures(&self, names: &[String; 2]) -> Result<(), StoreError> {
        with_pool!(self, pool => sqlx::query("DELETE FROM login_attempts WHERE account IN ($1, $2)")
            .bind(&names[0])
            .bind(&names[1])
            .execute(pool)
            .await?
            .rows_affected());
        Ok(())
    }

    /// Login attempts (failed or in flight) within the window under any of `names` (an
    /// account's keys), but the attempt `except`.
    pub async fn attempts_on(
        &self,
        names: &[String; 2],
        except: i64,
        now: i64,
        allowance: Allowance,
    ) -> Result<i64, StoreError> {
        Ok(with_pool!(self, pool => sqlx::query_scalar(
            "SELECT COUNT(*) FROM login_attempts
             WHERE account IN ($1, $2) AND at > $3 - $4 AND (attempt IS NULL OR attempt <> $5)",
        )
        .bind(&names[0])
        .bind(&names[1])
        .bind(now)
        .bind(allowance.window_seconds)
        .bind(except)
        .fetch_one(pool)
        .await?))
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
