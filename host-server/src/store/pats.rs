//! Personal access tokens: each row holds a token's digest (never the token), its first
//! characters, name, times and the address it was last used from. Looked up by digest on every
//! use (inline on SQLite, like the standing of access tokens). A token is made only while its
//! account is active, holds the hash the password was checked against and has room for it, in
//! one statement (on PostgreSQL after locking the account's row, so two at once cannot both
//! take the last place).

use super::{Backend, StoreError, User, UserStore};

/// A new token's row.
pub struct NewPat<'a> {
    pub id: &'a str,
    pub user_id: i64,
    pub name: &'a str,
    pub digest: &'a str,
    pub shown: &'a str,
    pub now: i64,
    pub expires_at: i64,
    /// The hash the password was checked against.
    pub checked_hash: &'a str,
    /// Live tokens the account may hold.
    pub max_live: i64,
}

/// Why a token was not made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotMade {
    /// The account has a live token of that name.
    NameTaken,
    /// The account holds as many live tokens as it may.
    Full,
    /// The password changed, or the account was deactivated, since the check.
    CredentialsChanged,
}

/// A live token as its owner lists it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PatRow {
    pub id: String,
    pub name: String,
    pub shown: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub last_used_at: Option<i64>,
    pub last_address: Option<String>,
}

/// The token a digest names, with its account: parameter `$1` is the digest. A token retired at
/// its expiry (its name taken again) counts as expired, not revoked.
pub(super) const BY_DIGEST: &str = "SELECT users.id, email, username, hashed_password, is_active, users.created_at,
        t.id AS token_id, t.name AS token_name, t.expires_at AS token_expires_at,
        t.revoked_at IS NOT NULL AND t.revoked_at < t.expires_at AS token_revoked,
        t.last_used_at AS token_last_used_at
    FROM personal_tokens t JOIN users ON users.id = t.user_id WHERE t.digest = $1";

#[derive(sqlx::FromRow)]
struct Found {
    #[sqlx(flatten)]
    user: User,
    token_id: String,
    token_name: String,
    token_expires_at: i64,
    token_revoked: bool,
    token_last_used_at: Option<i64>,
}

impl From<Found> for crate::accounts::pats::PatStanding {
    fn from(found: Found) -> Self {
        Self {
            user: found.user,
            id: found.token_id,
            name: found.token_name,
            expires_at: found.token_expires_at,
            revoked: found.token_revoked,
            last_used_at: found.token_last_used_at,
        }
    }
}

impl UserStore {
    /// Makes the token `new` describes, unless its account changed since the password check,
    /// has a live token of that name, or is full. A token of that name that has expired gives
    /// the name up (it is marked revoked at its expiry, so its use still says it expired).
    pub async fn create_pat(&self, new: &NewPat<'_>) -> Result<Result<(), NotMade>, StoreError> {
        with_pool!(self, pool => sqlx::query(
            "UPDATE personal_tokens SET revoked_at = expires_at
             WHERE user_id = $1 AND name = $2 AND revoked_at IS NULL AND expires_at <= $3",
        )
        .bind(new.user_id)
        .bind(new.name)
        .bind(new.now)
        .execute(pool)
        .await?
        .rows_affected());
        let insert = "INSERT INTO personal_tokens (id, user_id, seq, name, digest, shown, created_at, expires_at)
             SELECT $1, id, (SELECT COALESCE(MAX(seq), 0) + 1 FROM personal_tokens WHERE user_id = $2),
                    $3, $4, $5, $6, $7 FROM users
             WHERE id = $2 AND is_active AND hashed_password = $8
               AND (SELECT COUNT(*) FROM personal_tokens
                    WHERE user_id = $2 AND revoked_at IS NULL AND expires_at > $6) < $9";
        macro_rules! insert_on {
            ($executor:expr) => {
                sqlx::query(insert)
                    .bind(new.id)
                    .bind(new.user_id)
                    .bind(new.name)
                    .bind(new.digest)
                    .bind(new.shown)
                    .bind(new.now)
                    .bind(new.expires_at)
                    .bind(new.checked_hash)
                    .bind(new.max_live)
                    .execute($executor)
                    .await
                    .map(|done| done.rows_affected())
            };
        }
        let inserted = match &self.backend {
            // One writer at a time: the count and the insert are one statement.
            Backend::Sqlite { pool, .. } => insert_on!(pool),
            Backend::Postgres { pool, .. } => {
                let mut transaction = pool.begin().await?;
                sqlx::query("SELECT id FROM users WHERE id = $1 FOR UPDATE")
                    .bind(new.user_id)
                    .execute(&mut *transaction)
                    .await?;
                let inserted = insert_on!(&mut *transaction);
                if inserted.is_ok() {
                    transaction.commit().await?;
                }
                inserted
            }
        };
        match inserted {
            Ok(1) => Ok(Ok(())),
            Ok(_) => {
                let live = self.count_live_pats(new.user_id, new.now).await?;
                Ok(Err(if live >= new.max_live { NotMade::Full } else { NotMade::CredentialsChanged }))
            }
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => Ok(Err(NotMade::NameTaken)),
            Err(other) => Err(other.into()),
        }
    }

    /// How many live tokens (not revoked, not expired at `now`) the account holds.
    pub async fn count_live_pats(&self, user_id: i64, now: i64) -> Result<i64, StoreError> {
        Ok(with_pool!(self, pool => sqlx::query_scalar(
            "SELECT COUNT(*) FROM personal_tokens WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2",
        )
        .bind(user_id)
        .bind(now)
        .fetch_one(pool)
        .await?))
    }

    /// The account's live tokens at `now`, newest first.
    pub async fn list_pats(&self, user_id: i64, now: i64) -> Result<Vec<PatRow>, StoreError> {
        Ok(with_pool!(self, pool => sqlx::query_as(
            "SELECT id, name, shown, created_at, expires_at, last_used_at, last_address FROM personal_tokens
             WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2
             ORDER BY seq DESC",
        )
        .bind(user_id)
        .bind(now)
        .fetch_all(pool)
        .await?))
    }

    /// Revokes the account's live token `id` at `now`; its name, when there was one.
    pub async fn revoke_pat(&self, user_id: i64, id: &str, now: i64) -> Result<Option<String>, StoreError> {
        Ok(with_pool!(self, pool => sqlx::query_scalar(
            "UPDATE personal_tokens SET revoked_at = $3
             WHERE user_id = $1 AND id = $2 AND revoked_at IS NULL AND expires_at > $3 RETURNING name",
        )
        .bind(user_id)
        .bind(id)
        .bind(now)
        .fetch_optional(pool)
        .await?))
    }

    /// Revokes every live token of the account at `now` (a deactivation); how many.
    pub async fn revoke_pats_of(&self, user_id: i64, now: i64) -> Result<u64, StoreError> {
        Ok(with_pool!(self, pool => sqlx::query(
            "UPDATE personal_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2",
        )
        .bind(user_id)
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected()))
    }

    /// The token whose digest is `digest`, with its account, whatever its state.
    pub async fn pat_by_digest(&self, digest: &str) -> Result<Option<crate::accounts::pats::PatStanding>, StoreError> {
        if let Backend::Sqlite { readers: Some(readers), .. } = &self.backend {
            match readers.pat(BY_DIGEST, digest) {
                Ok(found) => return Ok(found),
                Err(why) => tracing::debug!(%why, "token lookup through the pool"),
            }
        }
        let found: Option<Found> =
            with_pool!(self, pool => sqlx::query_as(BY_DIGEST).bind(digest).fetch_optional(pool).await?);
        Ok(found.map(Into::into))
    }

    /// Notes a use of token `id` at `now` from `address`, unless one was noted within
    /// [`crate::accounts::pats::TOUCH_EVERY_SECONDS`] (by this host or another).
    pub async fn touch_pat(&self, id: &str, now: i64, address: &str) -> Result<(), StoreError> {
        with_pool!(self, pool => sqlx::query(
            "UPDATE personal_tokens SET last_used_at = $2, last_address = $3
             WHERE id = $1 AND (last_used_at IS NULL OR last_used_at <= $2 - $4)",
        )
        .bind(id)
        .bind(now)
        .bind(address)
        .bind(crate::accounts::pats::TOUCH_EVERY_SECONDS)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(())
    }

    /// Deletes tokens that ended (expired or revoked) more than
    /// [`crate::accounts::pats::KEPT_AFTER_END_SECONDS`] before `now`.
    pub async fn purge_pats(&self, now: i64) -> Result<u64, StoreError> {
        let before = now - crate::accounts::pats::KEPT_AFTER_END_SECONDS;
        Ok(with_pool!(self, pool => sqlx::query(
            "DELETE FROM personal_tokens WHERE expires_at <= $1 OR revoked_at <= $1",
        )
        .bind(before)
        .execute(pool)
        .await?
        .rows_affected()))
    }
}
