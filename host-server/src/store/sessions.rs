//! Revocations: single tokens by `jti`, and all of a user's tokens issued
//! before an instant. In the database, so every host on it refuses a revoked
//! token on its next request.

use super::{Backend, StoreError, User, UserStore};

/// The account a token names, and whether that token was revoked.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Session {
    #[sqlx(flatten)]
    pub user: User,
    /// Tokens issued (`iat`) before this Unix second are refused.
    pub tokens_valid_after: i64,
    /// The token's `jti` is on the revocation list.
    pub revoked: bool,
}

/// The user and the revocation state of one token, in one query: parameters
/// are the token's `jti`, then the user's id.
pub(super) const SESSION: &str = "SELECT id, email, username, hashed_password, is_active, tokens_valid_after,
        EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = $1) AS revoked
    FROM users WHERE id = $2";

impl UserStore {
    /// The user `id` and the revocation state of the token `jti`. Asked on every
    /// authenticated request: answered inline when it can be ([`super::readers`]),
    /// else through the pool.
    pub async fn session(&self, id: i64, jti: &str) -> Result<Option<Session>, StoreError> {
        if let Backend::Sqlite { readers: Some(readers), .. } = &self.backend {
            match readers.session(SESSION, id, jti) {
                Ok(found) => return Ok(found),
                Err(why) => tracing::debug!(%why, "session lookup through the pool"),
            }
        }
        Ok(with_pool!(self, pool => sqlx::query_as(SESSION).bind(jti).bind(id).fetch_optional(pool).await?))
    }

    /// Refuses the token `jti` from now on; the row is purged after `expires_at`, which must be
    /// past every moment the token could be accepted ([`crate::tokens::revocation_expiry`]).
    pub async fn revoke_token(&self, jti: &str, expires_at: i64) -> Result<(), StoreError> {
        with_pool!(self, pool => sqlx::query(
            "INSERT INTO revoked_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti)
        .bind(expires_at)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(())
    }

    /// Refuses every token issued to user `id` before `now`.
    pub async fn revoke_all_tokens(&self, id: i64, now: i64) -> Result<(), StoreError> {
        with_pool!(self, pool => sqlx::query(
            "UPDATE users SET tokens_valid_after = CASE WHEN tokens_valid_after > $1 THEN tokens_valid_after ELSE $1 END
             WHERE id = $2",
        )
        .bind(now)
        .bind(id)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(())
    }

    /// Deletes revocations of tokens that have expired by `now`.
    pub async fn purge_revocations(&self, now: i64) -> Result<u64, StoreError> {
        Ok(with_pool!(self, pool => sqlx::query("DELETE FROM revoked_tokens WHERE expires_at <= $1")
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()))
    }
}
