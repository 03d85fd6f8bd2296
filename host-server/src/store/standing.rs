//! What every authenticated request reads: the account a token names and the standing of
//! that token (its session live, or for a token from before sessions, not revoked by `jti`
//! nor issued before the account's last "log out everywhere"), in one query. And the
//! revocations of tokens from before sessions, which stay until those tokens expire.

use super::{Backend, StoreError, User, UserStore};

/// The account a token names, and whether the token still stands.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Standing {
    #[sqlx(flatten)]
    pub user: User,
    /// Tokens without a session issued (`iat`) before this Unix second are refused.
    pub tokens_valid_after: i64,
    /// The token's `jti` is on the revocation list (tokens without a session).
    pub revoked: bool,
    /// The token's session (`sid`) exists, belongs to the account, is not revoked and has not
    /// reached its absolute expiry; or, for a token exchanged from a personal access token,
    /// that token (its id is the `sid`) is live.
    pub session_live: bool,
}

/// The user and the standing of one token, in one query: parameters are the token's `jti`,
/// the user's id, the token's `sid` (empty when it has none) and the time now.
pub(super) const STANDING: &str = "SELECT id, email, username, hashed_password, is_active, created_at,
        tokens_valid_after,
        EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = $1) AS revoked,
        (EXISTS (SELECT 1 FROM sessions WHERE sessions.id = $3 AND sessions.user_id = users.id
                 AND sessions.revoked_at IS NULL AND sessions.expires_at > $4)
         OR EXISTS (SELECT 1 FROM personal_tokens t WHERE t.id = $3 AND t.user_id = users.id
                 AND t.revoked_at IS NULL AND t.expires_at > $4)) AS session_live
    FROM users WHERE id = $2";

/// [`STANDING`] for many tokens in one statement (PostgreSQL): parameters are arrays of user
/// ids, `jti`s, `sid`s and times, one element per token; each row found carries its token's
/// position in them, from 1, as `n`.
pub(super) const STANDING_MANY: &str = "SELECT q.n, users.id, email, username, hashed_password, is_active,
        users.created_at, tokens_valid_after,
        EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = q.jti) AS revoked,
        (EXISTS (SELECT 1 FROM sessions WHERE sessions.id = q.sid AND sessions.user_id = users.id
                 AND sessions.revoked_at IS NULL AND sessions.expires_at > q.now)
         OR EXISTS (SELECT 1 FROM personal_tokens t WHERE t.id = q.sid AND t.user_id = users.id
                 AND t.revoked_at IS NULL AND t.expires_at > q.now)) AS session_live
    FROM unnest($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::BIGINT[]) WITH ORDINALITY AS q (id, jti, sid, now, n)
    JOIN users ON users.id = q.id";

impl UserStore {
    /// The user `id` and the standing of the token `jti` of session `sid` (empty: none) at
    /// `now`. Asked on every authenticated request: answered inline when it can be
    /// ([`super::readers`]), else through the pool.
    pub async fn standing(&self, id: i64, jti: &str, sid: &str, now: i64) -> Result<Option<Standing>, StoreError> {
        match &self.backend {
            Backend::Sqlite { readers: Some(readers), .. } => match readers.standing(STANDING, id, jti, sid, now) {
                Ok(found) => return Ok(found),
                Err(why) => tracing::debug!(%why, "standing lookup through the pool"),
            },
            Backend::Postgres { readers: Some(readers), .. } => {
                return Ok(readers.standing(id, jti, sid, now).await?);
            }
            Backend::Sqlite { readers: None, .. } | Backend::Postgres { readers: None, .. } => {}
        }
        Ok(
            with_pool!(self, pool => sqlx::query_as(STANDING).bind(jti).bind(id).bind(sid).bind(now).fetch_optional(pool).await?),
        )
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
