//! Signing keys as stored: sealed private halves, public JWKs, and their life cycle
//! (active → verifying → retired). The store never sees a private key in clear.

use super::{StoreError, UserStore};

/// Where a key is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Signs new tokens (one key at most), and verifies.
    Active,
    /// Verifies tokens it signed before; signs no more.
    Verifying,
    /// Neither: its tokens are refused.
    Retired,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Verifying => "verifying",
            Self::Retired => "retired",
        }
    }

    fn parse(text: &str) -> Result<Self, StoreError> {
        match text {
            "active" => Ok(Self::Active),
            "verifying" => Ok(Self::Verifying),
            "retired" => Ok(Self::Retired),
            other => Err(StoreError::Corrupt(format!("a signing key in the unknown state {other:?}"))),
        }
    }
}

/// A signing key as stored.
#[derive(Debug, Clone)]
pub struct StoredKey {
    pub kid: String,
    /// `HS256` or `EdDSA`.
    pub algorithm: String,
    pub state: KeyState,
    /// The private half, sealed under the master key (see `crate::keyring::seal`).
    pub sealed_private: Vec<u8>,
    /// The public JWK of an asymmetric key; `None` for HS256.
    pub public_jwk: Option<String>,
    /// The pre-0.2 secret: its tokens carry no `kid`.
    pub legacy: bool,
    pub created_at: i64,
}

#[derive(sqlx::FromRow)]
struct Row {
    kid: String,
    algorithm: String,
    state: String,
    sealed_private: Vec<u8>,
    public_jwk: Option<String>,
    legacy: bool,
    created_at: i64,
}

impl TryFrom<Row> for StoredKey {
    type Error = StoreError;
    fn try_from(row: Row) -> Result<Self, StoreError> {
        Ok(Self {
            state: KeyState::parse(&row.state)?,
            kid: row.kid,
            algorithm: row.algorithm,
            sealed_private: row.sealed_private,
            public_jwk: row.public_jwk,
            legacy: row.legacy,
            created_at: row.created_at,
        })
    }
}

/// What a state change did.
#[derive(Debug, PartialEq, Eq)]
pub enum KeyChange {
    Done,
    NoSuchKey,
    /// The change would leave no active key, or retire the active one.
    ActiveKey,
}

impl UserStore {
    /// Every key, oldest first.
    pub async fn signing_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        let select = "SELECT kid, algorithm, state, sealed_private, public_jwk, legacy, created_at FROM signing_keys \
                      ORDER BY created_at, kid";
        let rows: Vec<Row> = with_pool!(self, pool => sqlx::query_as(select).fetch_all(pool).await?);
        rows.into_iter().map(StoredKey::try_from).collect()
    }

    /// Adds `key`; `false` when a key with its `kid`, or an active key when it is active,
    /// exists already (another host got there first).
    pub async fn insert_signing_key(&self, key: &StoredKey) -> Result<bool, StoreError> {
        let inserted = with_pool!(self, pool => sqlx::query(
            "INSERT INTO signing_keys (kid, algorithm, state, sealed_private, public_jwk, legacy, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&key.kid)
        .bind(&key.algorithm)
        .bind(key.state.as_str())
        .bind(&key.sealed_private)
        .bind(&key.public_jwk)
        .bind(key.legacy)
        .bind(key.created_at)
        .execute(pool)
        .await
        .map(|_| ()));
        match inserted {
            Ok(_) => Ok(true),
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    /// Makes `key` the active key and the active one a verifying key, in one transaction.
    pub async fn rotate_signing_key(&self, key: &StoredKey) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query("UPDATE signing_keys SET state = 'verifying' WHERE state = 'active'").execute(&mut *tx).await?;
            sqlx::query(
                "INSERT INTO signing_keys (kid, algorithm, state, sealed_private, public_jwk, legacy, created_at)
                 VALUES ($1, $2, 'active', $3, $4, FALSE, $5)",
            )
            .bind(&key.kid)
            .bind(&key.algorithm)
            .bind(&key.sealed_private)
            .bind(&key.public_jwk)
            .bind(key.created_at)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Retires `kid`: its tokens are refused from the next refresh on. Never the active key.
    /// Its sealed private half is destroyed with it, so no later write to its `state` makes it
    /// verify again.
    pub async fn retire_signing_key(&self, kid: &str, now: i64) -> Result<KeyChange, StoreError> {
        let state: Option<String> = with_pool!(self, pool =>
            sqlx::query_scalar("SELECT state FROM signing_keys WHERE kid = $1").bind(kid).fetch_optional(pool).await?);
        match state.as_deref() {
            None => Ok(KeyChange::NoSuchKey),
            Some("active") => Ok(KeyChange::ActiveKey),
            Some(_) => {
                with_pool!(self, pool => sqlx::query(
                    "UPDATE signing_keys SET state = 'retired', retired_at = $2, sealed_private = $3
                     WHERE kid = $1 AND state <> 'active'",
                )
                .bind(kid)
                .bind(now)
                .bind(Vec::<u8>::new())
                .execute(pool)
                .await
                .map(|_| ())?);
                Ok(KeyChange::Done)
            }
        }
    }
}
