//! Sessions: one per successful password login, holding the digest of its current refresh
//! token (never the token), the digest of the one just spent (for honest retries within the
//! grace) and its refresh generation, which counts the tokens it has spent: every older one is
//! a replay (the caller tells its tokens apart, see `crate::accounts::sessions`).
//!
//! Rotation is one `UPDATE … WHERE refresh_digest = $presented … RETURNING`: on either
//! database, concurrent rotations of one token cannot both succeed, on one host or several.
//! A session is created only while its account is active and holds the hash the password was
//! checked against, in the same statement (on PostgreSQL with the account's row locked), so a
//! login checked while the password changed or the account was deactivated starts nothing.

use super::{StoreError, UserStore};

/// A session's columns, in the order [`SessionRow`] reads them.
const COLUMNS: &str = "id, user_id, client_id, created_at, created_address, created_user_agent, last_used_at, \
                       last_address, last_user_agent, idle_expires_at, expires_at, revoked_at, rotated_at, \
                       previous_digest, generation, amr";

/// A session as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub id: String,
    pub user_id: i64,
    pub client_id: String,
    pub created_at: i64,
    pub created_address: String,
    pub created_user_agent: String,
    pub last_used_at: i64,
    pub last_address: String,
    pub last_user_agent: String,
    /// The session ends if it is not refreshed by then.
    pub idle_expires_at: i64,
    /// The session ends then, whatever its use.
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    /// When the previous refresh token was spent.
    pub rotated_at: Option<i64>,
    /// The digest of the refresh token spent last.
    pub previous_digest: Option<String>,
    /// The current refresh token's generation: 1 at login, one more at each rotation; 0 for a
    /// session whose current token is from before generations.
    pub generation: i64,
    /// How its login was made: RFC 8176 `amr` values, space-separated (`pwd`, `pwd otp`).
    pub amr: String,
}

impl SessionRow {
    /// Whether the session can be used at `now`.
    pub fn live(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.idle_expires_at > now && self.expires_at > now
    }
}

/// A new session, as the caller made it.
pub struct NewSession<'a> {
    pub id: &'a str,
    pub user_id: i64,
    /// The stored hash the password was checked against: the account must still hold it.
    pub checked_hash: &'a str,
    pub client_id: &'a str,
    pub address: &'a str,
    pub user_agent: &'a str,
    pub now: i64,
    pub idle_expires_at: i64,
    pub expires_at: i64,
    /// The SHA-256 digest (hex) of its first refresh token.
    pub refresh_digest: &'a str,
    /// How the login was made (RFC 8176 `amr` values, space-separated).
    pub amr: &'a str,
}

/// A rotation, as the caller made it: the digest of the token presented, the new token's
/// digest, who asked and when.
pub struct Rotation<'a> {
    pub presented_digest: &'a str,
    pub new_digest: &'a str,
    /// The client the request names, which must be the session's; `None`: any.
    pub client_id: Option<&'a str>,
    pub address: &'a str,
    pub user_agent: &'a str,
    pub now: i64,
    /// The idle expiry from now.
    pub idle_expires_at: i64,
}

impl UserStore {
    /// Stores a new live session (generation 1) if its account is active, still holds
    /// `new.checked_hash`, and needs no second factor or the login gave one; whether it did.
    pub async fn create_session(&self, new: &NewSession<'_>) -> Result<bool, StoreError> {
        // PostgreSQL: the account's row is locked, so a password change or deactivation either
        // commits first (and this finds the account changed) or waits for this session, which
        // the sessions it then ends include. SQLite runs one writer at a time.
        let lock = match &self.backend {
            super::Backend::Sqlite { .. } => "",
            super::Backend::Postgres { .. } => " FOR UPDATE",
        };
        let insert = format!(
            "INSERT INTO sessions (id, user_id, client_id, created_at, created_address, created_user_agent,
                 last_used_at, last_address, last_user_agent, idle_expires_at, expires_at, refresh_digest, generation,
                 amr)
             SELECT $1, id, $3, $4, $5, $6, $4, $5, $6, $7, $8, $9, 1, $11 FROM users
             WHERE id = $2 AND is_active AND hashed_password = $10 AND (NOT two_factor OR $12){lock}"
        );
        let created = with_pool!(self, pool => sqlx::query(&insert)
            .bind(new.id)
            .bind(new.user_id)
            .bind(new.client_id)
            .bind(new.now)
            .bind(new.address)
            .bind(new.user_agent)
            .bind(new.idle_expires_at)
            .bind(new.expires_at)
            .bind(new.refresh_digest)
            .bind(new.checked_hash)
            .bind(new.amr)
            .bind(new.amr.split_whitespace().any(|method| method == "otp"))
            .execute(pool)
            .await?
            .rows_affected());
        Ok(created == 1)
    }

    /// Spends the refresh token `rotation.presented_digest` names, if it is its session's
    /// current one, the session is live, its account active and its client the one named: the
    /// new token becomes current and the presented one previous, in one statement. The session
    /// when it rotated; `None` otherwise.
    pub async fn rotate_refresh(&self, rotation: &Rotation<'_>) -> Result<Option<SessionRow>, StoreError> {
        let update = format!(
            "UPDATE sessions SET previous_digest = refresh_digest, refresh_digest = $2, generation = generation + 1,
                 rotated_at = $3, last_used_at = $3, last_address = $4, last_user_agent = $5,
                 idle_expires_at = CASE WHEN $6 < expires_at THEN $6 ELSE expires_at END
             WHERE refresh_digest = $1 AND revoked_at IS NULL AND idle_expires_at > $3 AND expires_at > $3
               AND ($7 = '' OR client_id = $7)
               AND user_id IN (SELECT id FROM users WHERE is_active)
             RETURNING {COLUMNS}"
        );
        Ok(with_pool!(self, pool => sqlx::query_as(&update)
            .bind(rotation.presented_digest)
            .bind(rotation.new_digest)
            .bind(rotation.now)
            .bind(rotation.address)
            .bind(rotation.user_agent)
            .bind(rotation.idle_expires_at)
            .bind(rotation.client_id.unwrap_or_default())
            .fetch_optional(pool)
            .await?))
    }

    /// The session whose previous (just spent) refresh token has this digest, with whether its
    /// account is active.
    pub async fn session_by_previous(&self, digest: &str) -> Result<Option<(SessionRow, bool)>, StoreError> {
        self.session_where("previous_digest = $1", digest).await
    }

    /// The session whose current refresh token has this digest, with whether its account is active.
    pub async fn session_by_refresh(&self, digest: &str) -> Result<Option<(SessionRow, bool)>, StoreError> {
        self.session_where("refresh_digest = $1", digest).await
    }

    /// The session `id`.
    pub async fn session(&self, id: &str) -> Result<Option<(SessionRow, bool)>, StoreError> {
        self.session_where("id = $1", id).await
    }

    async fn session_where(&self, condition: &str, value: &str) -> Result<Option<(SessionRow, bool)>, StoreError> {
        let select = format!(
            "SELECT {COLUMNS}, (SELECT is_active FROM users WHERE users.id = sessions.user_id) AS user_active
             FROM sessions WHERE {condition}"
        );
        let row: Option<WithUser> =
            with_pool!(self, pool => sqlx::query_as(&select).bind(value).fetch_optional(pool).await?);
        Ok(row.map(|row| (row.session, row.user_active.unwrap_or(false))))
    }

    /// Ends the session `id` (of `user_id`, when given) at `now`; whether a live one ended.
    pub async fn revoke_session(&self, id: &str, user_id: Option<i64>, now: i64) -> Result<bool, StoreError> {
        let ended = with_pool!(self, pool => sqlx::query(
            "UPDATE sessions SET revoked_at = $2
             WHERE id = $1 AND revoked_at IS NULL AND ($3 < 0 OR user_id = $3)",
        )
        .bind(id)
        .bind(now)
        .bind(user_id.unwrap_or(-1))
        .execute(pool)
        .await?
        .rows_affected());
        Ok(ended == 1)
    }

    /// Ends every live session of `user_id` but `keep` (when given) at `now`; how many.
    pub async fn revoke_sessions_of(&self, user_id: i64, keep: Option<&str>, now: i64) -> Result<u64, StoreError> {
        Ok(with_pool!(self, pool => sqlx::query(
            "UPDATE sessions SET revoked_at = $2
             WHERE user_id = $1 AND revoked_at IS NULL AND id <> $3",
        )
        .bind(user_id)
        .bind(now)
        .bind(keep.unwrap_or_default())
        .execute(pool)
        .await?
        .rows_affected()))
    }

    /// The live sessions of `user_id` at `now`, most recently used first.
    pub async fn live_sessions(&self, user_id: i64, now: i64) -> Result<Vec<SessionRow>, StoreError> {
        let select = format!(
            "SELECT {COLUMNS} FROM sessions
             WHERE user_id = $1 AND revoked_at IS NULL AND idle_expires_at > $2 AND expires_at > $2
             ORDER BY last_used_at DESC, created_at DESC, id"
        );
        Ok(with_pool!(self, pool => sqlx::query_as(&select).bind(user_id).bind(now).fetch_all(pool).await?))
    }

    /// Deletes sessions that ended (revoked or expired) before `now`: nothing accepts their
    /// tokens any more (an access token naming a session that is gone is refused).
    pub async fn purge_sessions(&self, now: i64) -> Result<u64, StoreError> {
        Ok(with_pool!(self, pool => sqlx::query(
            "DELETE FROM sessions WHERE revoked_at IS NOT NULL OR idle_expires_at <= $1 OR expires_at <= $1",
        )
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected()))
    }
}

#[derive(sqlx::FromRow)]
struct WithUser {
    #[sqlx(flatten)]
    session: SessionRow,
    user_active: Option<bool>,
}
