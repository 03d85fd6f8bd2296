//! Accounts: registration, lookup, password hash upgrades, administration.

use super::{Backend, Login, StoreError, USER_COLUMNS, User, UserStore, duplicate, email_key, username_key};

/// An account to import with its id, already checked: a normalised email, a valid username
/// or none, a hash the component can check.
#[derive(Debug, Clone)]
pub struct ImportedUser {
    pub id: i64,
    pub email: String,
    pub username: Option<String>,
    pub hashed_password: String,
    pub is_active: bool,
}

impl UserStore {
    /// Creates an active account; [`StoreError::DuplicateEmail`] or
    /// [`StoreError::DuplicateUsername`] when either is taken.
    pub async fn create_user(
        &self,
        email: &str,
        username: Option<&str>,
        hashed_password: &str,
    ) -> Result<User, StoreError> {
        let insert = format!(
            "INSERT INTO users (email, email_key, username, username_key, hashed_password) VALUES ($1, $2, $3, $4, $5)
             RETURNING {USER_COLUMNS}"
        );
        let created = with_pool!(self, pool => sqlx::query_as(&insert)
            .bind(email)
            .bind(email_key(email))
            .bind(username)
            .bind(username.map(username_key))
            .bind(hashed_password)
            .fetch_one(pool)
            .await);
        created.map_err(|error| match &error {
            sqlx::Error::Database(db) if db.is_unique_violation() => duplicate(db.as_ref()),
            _ => StoreError::Database(error),
        })
    }

    /// The account registered under `email`, in any spelling of it (its unique key).
    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        let select = format!("SELECT {USER_COLUMNS} FROM users WHERE email_key = $1");
        Ok(with_pool!(self, pool => sqlx::query_as(&select).bind(email_key(email)).fetch_optional(pool).await?))
    }

    /// The account with `id`.
    pub async fn user_by_id(&self, id: i64) -> Result<Option<User>, StoreError> {
        let select = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        Ok(with_pool!(self, pool => sqlx::query_as(&select).bind(id).fetch_optional(pool).await?))
    }

    /// The account with `username`, in any case.
    pub async fn user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
        let select = format!("SELECT {USER_COLUMNS} FROM users WHERE username_key = $1");
        Ok(with_pool!(self, pool => sqlx::query_as(&select).bind(username_key(username)).fetch_optional(pool).await?))
    }

    /// The account a login names, by email or by username.
    pub async fn user_by_login(&self, login: &Login<'_>) -> Result<Option<User>, StoreError> {
        match login {
            Login::Email(email) => self.user_by_email(email).await,
            Login::Username(name) => self.user_by_username(name).await,
        }
    }

    /// Replaces an account's password hash with `new` only if it is still
    /// `expected` (the one just checked), so a password changed meanwhile is
    /// never overwritten; whether it was replaced.
    pub async fn replace_password_hash(&self, id: i64, expected: &str, new: &str) -> Result<bool, StoreError> {
        let replaced = with_pool!(self, pool => sqlx::query(
            "UPDATE users SET hashed_password = $1 WHERE id = $2 AND hashed_password = $3",
        )
        .bind(new)
        .bind(id)
        .bind(expected)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(replaced == 1)
    }

    /// Starts an import: accounts written through the [`ImportWriter`], a batch at a time,
    /// land in one transaction, all or none.
    pub async fn begin_import(&self) -> Result<ImportWriter, StoreError> {
        Ok(match &self.backend {
            Backend::Sqlite { pool, .. } => ImportWriter::Sqlite(pool.begin().await?, 0),
            Backend::Postgres { pool, .. } => ImportWriter::Postgres(pool.begin().await?, 0),
        })
    }

    /// The newest import's number (0 before any): it changes when `users import` writes
    /// accounts, which hosts then survey.
    pub async fn last_import(&self) -> Result<i64, StoreError> {
        Ok(with_pool!(self, pool => sqlx::query_scalar::<_, Option<i64>>("SELECT MAX(id) FROM imports")
            .fetch_one(pool)
            .await?)
        .unwrap_or(0))
    }

    /// Every account's id, email key and username key, for an import's checks.
    pub async fn account_keys(&self) -> Result<Vec<(i64, String, Option<String>)>, StoreError> {
        let select = "SELECT id, email_key, username_key FROM users";
        Ok(with_pool!(self, pool => sqlx::query_as(select).fetch_all(pool).await?))
    }

    /// Sets an account's password hash (a password change).
    pub async fn set_password_hash(&self, id: i64, hash: &str) -> Result<(), StoreError> {
        with_pool!(self, pool => sqlx::query("UPDATE users SET hashed_password = $1 WHERE id = $2")
            .bind(hash)
            .bind(id)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(())
    }

    /// Calls `each` with every stored password hash that does not start with `prefix`, every
    /// one when `prefix` is empty (in pages, so memory stays bounded however many accounts
    /// there are). The prefix is compared exactly, not as a `LIKE` pattern.
    pub async fn hashes_not_starting_with(&self, prefix: &str, mut each: impl FnMut(&str)) -> Result<(), StoreError> {
        const PAGE: i64 = 1000;
        let mut after = i64::MIN;
        loop {
            let page: Vec<(i64, String)> = with_pool!(self, pool => sqlx::query_as(
                "SELECT id, hashed_password FROM users \
                 WHERE id > $1 AND ($2 = '' OR substr(hashed_password, 1, length($2)) <> $2) ORDER BY id LIMIT $3",
            )
            .bind(after)
            .bind(prefix)
            .bind(PAGE)
            .fetch_all(pool)
            .await?);
            for (_, hash) in &page {
                each(hash);
            }
            match page.last() {
                Some((id, _)) if page.len() as i64 == PAGE => after = *id,
                _ => return Ok(()),
            }
        }
    }

    /// Every account, oldest first, with its creation time (Unix seconds).
    pub async fn list_users(&self) -> Result<Vec<(User, i64)>, StoreError> {
        let rows: Vec<(i64, String, Option<String>, String, bool, i64)> = with_pool!(self, pool => sqlx::query_as(
            "SELECT id, email, username, hashed_password, is_active, created_at FROM users ORDER BY id",
        )
        .fetch_all(pool)
        .await?);
        Ok(rows
            .into_iter()
            .map(|(id, email, username, hashed_password, is_active, created_at)| {
                (User { id, email, username, hashed_password, is_active, created_at }, created_at)
            })
            .collect())
    }

    /// Activates or deactivates the account registered under `email`; whether
    /// there is one. Deactivating at `now` also revokes every token issued so far and every
    /// personal access token, so a later activation does not bring old sessions or tokens back.
    pub async fn set_active(&self, email: &str, active: bool, now: i64) -> Result<bool, StoreError> {
        let changed = with_pool!(self, pool => sqlx::query(
            "UPDATE users SET is_active = $1,
                 tokens_valid_after = CASE WHEN $1 OR tokens_valid_after > $2 THEN tokens_valid_after ELSE $2 END
             WHERE email_key = $3",
        )
        .bind(active)
        .bind(now)
        .bind(email_key(email))
        .execute(pool)
        .await?
        .rows_affected());
        if !active {
            // After the account is inactive, so that no token made meanwhile (made only for an
            // active account) is missed.
            with_pool!(self, pool => sqlx::query(
                "UPDATE personal_tokens SET revoked_at = $1
                 WHERE revoked_at IS NULL AND user_id IN (SELECT id FROM users WHERE email_key = $2)",
            )
            .bind(now)
            .bind(email_key(email))
            .execute(pool)
            .await?
            .rows_affected());
        }
        Ok(changed == 1)
    }
}

/// An import being written: one transaction, committed by [`ImportWriter::commit`] (dropped
/// without it, nothing of the import stays), with how many accounts it has written.
pub enum ImportWriter {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>, i64),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>, i64),
}

/// Writes `$users` (at most [`ROWS_PER_INSERT`]) on `$transaction` with `$sql`, one statement,
/// counting them into `$written`.
macro_rules! write_accounts {
    ($transaction:expr, $written:expr, $sql:expr, $users:expr) => {{
        let mut insert = sqlx::query($sql);
        for user in $users {
            insert = insert
                .bind(user.id)
                .bind(&user.email)
                .bind(email_key(&user.email))
                .bind(user.username.as_deref())
                .bind(user.username.as_deref().map(username_key))
                .bind(&user.hashed_password)
                .bind(user.is_active);
        }
        insert.execute(&mut **$transaction).await.map_err(|error| match &error {
            sqlx::Error::Database(db) if db.is_unique_violation() => duplicate(db.as_ref()),
            _ => StoreError::Database(error),
        })?;
        *$written += $users.len() as i64;
    }};
}

/// Accounts one `INSERT` writes (7 parameters each: well within both databases' bounds), so a
/// large import costs a statement per hundred rows, not per row.
const ROWS_PER_INSERT: usize = 100;

impl ImportWriter {
    /// Writes `users`, with their ids.
    pub async fn write(&mut self, users: &[ImportedUser]) -> Result<(), StoreError> {
        for chunk in users.chunks(ROWS_PER_INSERT) {
            let overriding = match self {
                Self::Sqlite(..) => "",
                Self::Postgres(..) => "OVERRIDING SYSTEM VALUE",
            };
            let rows: Vec<String> = (0..chunk.len())
                .map(|row| {
                    let first = row * 7 + 1;
                    let places: Vec<String> = (first..first + 7).map(|n| format!("${n}")).collect();
                    format!("({})", places.join(", "))
                })
                .collect();
            let insert = format!(
                "INSERT INTO users (id, email, email_key, username, username_key, hashed_password, is_active) \
                 {overriding} VALUES {}",
                rows.join(", ")
            );
            match self {
                Self::Sqlite(transaction, written) => write_accounts!(transaction, written, &insert, chunk),
                Self::Postgres(transaction, written) => write_accounts!(transaction, written, &insert, chunk),
            }
        }
        Ok(())
    }

    /// Records the import (hosts poll for it, to survey the new hashes) and commits. On
    /// PostgreSQL the identity sequence is first moved past the largest id, so registrations
    /// go on after it (SQLite's AUTOINCREMENT does that by itself).
    pub async fn commit(self) -> Result<(), StoreError> {
        const RECORD: &str = "INSERT INTO imports (accounts) VALUES ($1)";
        match self {
            Self::Sqlite(mut transaction, written) => {
                sqlx::query(RECORD).bind(written).execute(&mut *transaction).await?;
                transaction.commit().await?;
            }
            Self::Postgres(mut transaction, written) => {
                sqlx::query(RECORD).bind(written).execute(&mut *transaction).await?;
                sqlx::query(
                    "SELECT setval(pg_get_serial_sequence('users', 'id'), (SELECT COALESCE(MAX(id), 1) FROM users))",
                )
                .execute(&mut *transaction)
                .await?;
                transaction.commit().await?;
            }
        }
        Ok(())
    }
}
