//! Second factors: an account's TOTP secret (sealed; the caller seals and opens it), whether it
//! is confirmed, the last step a code was accepted for, and its recovery codes' hashes. Every
//! spend (a step, a recovery code) is one conditional update, so of two logins racing with the
//! same code exactly one wins, also between hosts sharing a PostgreSQL database.

use super::{Backend, StoreError, UserStore};

/// An account's second factor as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SecondFactorRow {
    pub sealed_secret: Vec<u8>,
    pub created_at: i64,
    pub confirmed_at: Option<i64>,
    pub last_step: Option<i64>,
}

impl SecondFactorRow {
    pub fn confirmed(&self) -> bool {
        self.confirmed_at.is_some()
    }
}

/// Runs `$body` on a transaction `$tx` of either backend, committing when it returns `Ok`.
macro_rules! in_transaction {
    ($store:expr, $tx:ident => $body:expr) => {
        match &$store.backend {
            Backend::Sqlite { pool, .. } => {
                let mut $tx = pool.begin().await?;
                let done = $body;
                if done.is_ok() {
                    $tx.commit().await?;
                }
                done
            }
            Backend::Postgres { pool, .. } => {
                let mut $tx = pool.begin().await?;
                let done = $body;
                if done.is_ok() {
                    $tx.commit().await?;
                }
                done
            }
        }
    };
}

/// Replaces the account's recovery codes with `$hashes`, inside the transaction `$tx`.
macro_rules! replace_codes {
    ($tx:ident, $user_id:expr, $hashes:expr) => {
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1").bind($user_id).execute(&mut *$tx).await?;
        for hash in $hashes {
            sqlx::query("INSERT INTO recovery_codes (user_id, hash) VALUES ($1, $2)")
                .bind($user_id)
                .bind(hash)
                .execute(&mut *$tx)
                .await?;
        }
    };
}

impl UserStore {
    /// The account's second factor, confirmed or pending.
    pub async fn second_factor(&self, user_id: i64) -> Result<Option<SecondFactorRow>, StoreError> {
        Ok(with_pool!(self, pool => sqlx::query_as(
            "SELECT sealed_secret, created_at, confirmed_at, last_step FROM second_factors WHERE user_id = $1",
        )
        .bind(user_id)
        .fetch_optional(pool)
        .await?))
    }

    /// Starts an enrolment: a pending secret and fresh recovery codes, replacing a pending one
    /// and its codes. `false` (nothing changed) when the account has a confirmed second factor.
    pub async fn put_pending_second_factor(
        &self,
        user_id: i64,
        sealed_secret: &[u8],
        recovery_hashes: &[String],
        now: i64,
    ) -> Result<bool, StoreError> {
        in_transaction!(self, tx => {
            sqlx::query("DELETE FROM second_factors WHERE user_id = $1 AND confirmed_at IS NULL")
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            let inserted = sqlx::query(
                "INSERT INTO second_factors (user_id, sealed_secret, created_at) VALUES ($1, $2, $3)
                 ON CONFLICT (user_id) DO NOTHING",
            )
            .bind(user_id)
            .bind(sealed_secret)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 1 {
                replace_codes!(tx, user_id, recovery_hashes);
            }
            Ok::<bool, StoreError>(inserted == 1)
        })
    }

    /// Confirms the pending second factor whose secret is `checked` (the one the first code was
    /// checked against: an enrolment started meanwhile is not confirmed by it) with the step
    /// that code matched, and marks the account's logins as needing it; `false` when that
    /// enrolment is no longer pending. On PostgreSQL the account's row is updated, so a session
    /// being started (which locks it) either finishes first, and is among the sessions the
    /// caller then ends, or waits and finds a second factor needed.
    pub async fn confirm_second_factor(
        &self,
        user_id: i64,
        checked: &[u8],
        step: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        in_transaction!(self, tx => {
            let confirmed = sqlx::query(
                "UPDATE second_factors SET confirmed_at = $2, last_step = $3
                 WHERE user_id = $1 AND confirmed_at IS NULL AND sealed_secret = $4",
            )
            .bind(user_id)
            .bind(now)
            .bind(step)
            .bind(checked)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if confirmed == 1 {
                sqlx::query("UPDATE users SET two_factor = TRUE WHERE id = $1").bind(user_id).execute(&mut *tx).await?;
            }
            Ok::<bool, StoreError>(confirmed == 1)
        })
    }

    /// Spends `step` for the account's confirmed second factor: `true` only if no code of this
    /// step or a later one was accepted before (one statement: racing logins, one winner).
    pub async fn spend_step(&self, user_id: i64, step: i64) -> Result<bool, StoreError> {
        let updated = with_pool!(self, pool => sqlx::query(
            "UPDATE second_factors SET last_step = $2
             WHERE user_id = $1 AND confirmed_at IS NOT NULL AND (last_step IS NULL OR last_step < $2)",
        )
        .bind(user_id)
        .bind(step)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(updated == 1)
    }

    /// The account's unused recovery codes: ids and hashes.
    pub async fn unused_recovery_codes(&self, user_id: i64) -> Result<Vec<(i64, String)>, StoreError> {
        Ok(with_pool!(self, pool => sqlx::query_as(
            "SELECT id, hash FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL ORDER BY id",
        )
        .bind(user_id)
        .fetch_all(pool)
        .await?))
    }

    /// Spends the recovery code `id`: `true` only for the first spend.
    pub async fn spend_recovery_code(&self, id: i64, now: i64) -> Result<bool, StoreError> {
        let updated = with_pool!(self, pool => sqlx::query(
            "UPDATE recovery_codes SET used_at = $2 WHERE id = $1 AND used_at IS NULL",
        )
        .bind(id)
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(updated == 1)
    }

    /// Replaces the account's recovery codes (the old ones die); `false` without a confirmed
    /// second factor.
    pub async fn replace_recovery_codes(&self, user_id: i64, hashes: &[String]) -> Result<bool, StoreError> {
        in_transaction!(self, tx => {
            let confirmed: Option<i64> = sqlx::query_scalar(
                "SELECT user_id FROM second_factors WHERE user_id = $1 AND confirmed_at IS NOT NULL",
            )
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?;
            if confirmed.is_some() {
                replace_codes!(tx, user_id, hashes);
            }
            Ok::<bool, StoreError>(confirmed.is_some())
        })
    }

    /// Removes the account's second factor and recovery codes; whether it had one.
    pub async fn remove_second_factor(&self, user_id: i64) -> Result<bool, StoreError> {
        in_transaction!(self, tx => {
            let removed = sqlx::query("DELETE FROM second_factors WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            sqlx::query("UPDATE users SET two_factor = FALSE WHERE id = $1").bind(user_id).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
            Ok::<bool, StoreError>(removed > 0)
        })
    }
}
