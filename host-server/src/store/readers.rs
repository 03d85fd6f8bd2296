//! The hot read, the account and revocation state behind every authenticated
//! request, answered on the calling thread from a few read-only connections.
//!
//! sqlx runs each SQLite connection on a worker thread, so every query through
//! it is a hand-off to that thread and back (two context switches at least),
//! and its pool adds a ping to the worker whenever a connection is returned.
//! For a primary-key lookup that SQLite answers from its page cache in a few
//! microseconds, those hand-offs cost many times the query. So this lookup runs
//! inline, through rusqlite on the same SQLite library, on connections that are
//! read-only (this path cannot write) and never wait: when no connection is
//! free, or SQLite would have to wait for a lock, or anything else goes wrong,
//! the caller takes the pool's way instead, which waits and reports errors as
//! every other query does.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::{Standing, User};
use crate::accounts::pats::PatStanding;

/// Why a lookup was left to the pool.
#[derive(Debug, thiserror::Error)]
pub(super) enum NotHere {
    #[error("every inline reader is in use")]
    AllBusy,
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

pub(super) struct Readers {
    connections: Box<[Mutex<Connection>]>,
    next: AtomicUsize,
}

impl Readers {
    /// Opens `count` (at least one) read-only connections to the database file at `path`.
    pub fn open(path: &Path, count: usize) -> Result<Self, rusqlite::Error> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connections = (0..count.max(1))
            .map(|_| {
                let connection = Connection::open_with_flags(path, flags)?;
                // Never wait on the calling thread: a lock means "use the pool".
                connection.busy_timeout(std::time::Duration::ZERO)?;
                Ok(Mutex::new(connection))
            })
            .collect::<Result<Vec<_>, rusqlite::Error>>()?;
        Ok(Self { connections: connections.into(), next: AtomicUsize::new(0) })
    }

    /// The user `id` and the standing of token `jti` of session `sid` at `now` (`sql` is the
    /// store's standing query), if a reader is free and SQLite answers at once.
    pub fn standing(&self, sql: &str, id: i64, jti: &str, sid: &str, now: i64) -> Result<Option<Standing>, NotHere> {
        let connection = self.free()?;
        let mut statement = connection.prepare_cached(sql)?;
        let found = statement
            // By name: SQLite numbers `$N` parameters in order of appearance, not by N.
            .query_row(rusqlite::named_params! { "$1": jti, "$2": id, "$3": sid, "$4": now }, |row| {
                Ok(Standing {
                    user: user_of(row)?,
                    tokens_valid_after: row.get("tokens_valid_after")?,
                    revoked: row.get("revoked")?,
                    session_live: row.get("session_live")?,
                })
            })
            .optional()?;
        Ok(found)
    }

    /// The personal access token whose digest is `digest`, with its account (`sql` is the
    /// store's lookup by digest), if a reader is free and SQLite answers at once.
    pub fn pat(&self, sql: &str, digest: &str) -> Result<Option<PatStanding>, NotHere> {
        let connection = self.free()?;
        let mut statement = connection.prepare_cached(sql)?;
        let found = statement
            .query_row(rusqlite::named_params! { "$1": digest }, |row| {
                Ok(PatStanding {
                    user: user_of(row)?,
                    id: row.get("token_id")?,
                    name: row.get("token_name")?,
                    expires_at: row.get("token_expires_at")?,
                    revoked: row.get("token_revoked")?,
                    last_used_at: row.get("token_last_used_at")?,
                })
            })
            .optional()?;
        Ok(found)
    }

    /// A connection no other lookup holds, starting from the next in turn.
    fn free(&self) -> Result<std::sync::MutexGuard<'_, Connection>, NotHere> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let n = self.connections.len();
        (0..n).find_map(|i| self.connections[(start + i) % n].try_lock().ok()).ok_or(NotHere::AllBusy)
    }
}

fn user_of(row: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: row.get("id")?,
        email: row.get("email")?,
        username: row.get("username")?,
        hashed_password: row.get("hashed_password")?,
        is_active: row.get("is_active")?,
        created_at: row.get("created_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::UserStore;

    #[tokio::test]
    async fn inline_and_pooled_lookups_agree_and_see_every_write_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = UserStore::open(&format!("sqlite://{}", dir.path().join("t.db").display()), 4).await.unwrap();
        let crate::store::Backend::Sqlite { readers: Some(readers), .. } = &store.backend else {
            panic!("a SQLite database file has inline readers");
        };
        let sql = crate::store::standing::STANDING;
        let ada = store.create_user("ada@example.com", Some("Ada"), "hash").await.unwrap();
        assert!(readers.standing(sql, ada.id, "jti-1", "", 0).unwrap().unwrap().user.is_active);

        // Written through the pool, seen by the very next inline read.
        store.set_active("ada@example.com", false, 1_000).await.unwrap();
        store.revoke_token("jti-1", 2_000).await.unwrap();
        let inline = readers.standing(sql, ada.id, "jti-1", "", 0).unwrap().unwrap();
        assert!(!inline.user.is_active && inline.revoked && inline.tokens_valid_after == 1_000, "{inline:?}");
        assert!(readers.standing(sql, ada.id + 1, "jti-1", "", 0).unwrap().is_none());

        // With every reader taken, the store answers the same through the pool.
        let held: Vec<_> = readers.connections.iter().map(|c| c.lock().unwrap()).collect();
        assert!(matches!(readers.standing(sql, ada.id, "jti-1", "", 0), Err(NotHere::AllBusy)));
        let pooled = store.standing(ada.id, "jti-1", "", 0).await.unwrap().unwrap();
        drop(held);
        assert_eq!(format!("{pooled:?}"), format!("{inline:?}"));
    }

    #[test]
    fn readers_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        Connection::open(&path).unwrap().execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
        let readers = Readers::open(&path, 1).unwrap();
        let connection = readers.connections[0].lock().unwrap();
        let error = connection.execute("INSERT INTO t VALUES (1)", []).unwrap_err();
        assert_eq!(error.sqlite_error_code(), Some(rusqlite::ErrorCode::ReadOnly), "{error}");
    }
}
