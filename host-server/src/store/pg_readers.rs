//! The hot read on PostgreSQL: the account and standing behind every authenticated request,
//! on a few connections of its own, outside sqlx's pool.
//!
//! The pool pings each connection when it hands it out and again when it takes it back (to
//! find one the server closed, or one a cancelled query left mid-exchange), so a one-row
//! lookup cost three round trips to the server. These connections are never pinged; instead
//! each lookup runs in a task of its own (a cancelled request cannot leave a connection
//! mid-exchange: the task finishes the exchange), and a connection that fails or does not
//! answer in time is dropped and the lookup tried once on a fresh one (a server restart
//! closes every connection; the first lookup on each then finds out).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sqlx::ConnectOptions;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use tokio::sync::Mutex;

use super::Standing;

/// How long one lookup (connecting included) may take before the connection is given up.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) struct PgReaders {
    options: PgConnectOptions,
    connections: Box<[Arc<Mutex<Option<PgConnection>>>]>,
    next: AtomicUsize,
}

impl PgReaders {
    /// `count` (at least one) connections to the server `options` names, opened when first used.
    pub fn new(options: PgConnectOptions, count: usize) -> Self {
        let connections = (0..count.max(1)).map(|_| Arc::new(Mutex::new(None))).collect();
        Self { options, connections, next: AtomicUsize::new(0) }
    }

    /// Runs the standing query `sql` for user `id`, token `jti`, session `sid` at `now` on a free
    /// connection (else waits for the next in turn).
    pub async fn standing(
        &self,
        sql: &'static str,
        id: i64,
        jti: &str,
        sid: &str,
        now: i64,
    ) -> Result<Option<Standing>, sqlx::Error> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let n = self.connections.len();
        let free = (0..n).find_map(|i| Arc::clone(&self.connections[(start + i) % n]).try_lock_owned().ok());
        let mut slot = match free {
            Some(slot) => slot,
            None => Arc::clone(&self.connections[start % n]).lock_owned().await,
        };
        let (options, jti, sid) = (self.options.clone(), jti.to_owned(), sid.to_owned());
        let lookup = tokio::spawn(async move {
            let mut last = None;
            for _ in 0..2 {
                let fresh = slot.is_none();
                let attempt = tokio::time::timeout(LOOKUP_TIMEOUT, async {
                    if slot.is_none() {
                        *slot = Some(options.connect().await?);
                    }
                    let connection = slot.as_mut().expect("connected above");
                    sqlx::query_as(sql).bind(&jti).bind(id).bind(&sid).bind(now).fetch_optional(connection).await
                })
                .await
                .unwrap_or(Err(sqlx::Error::PoolTimedOut));
                match attempt {
                    Ok(found) => return Ok(found),
                    Err(error) if is_connection_error(&error) => {
                        // The connection is closed, broken, or left mid-exchange: never reuse it.
                        slot.take();
                        if fresh {
                            return Err(error);
                        }
                        last = Some(error);
                    }
                    Err(error) => return Err(error),
                }
            }
            Err(last.expect("two attempts failed"))
        });
        lookup.await.map_err(|error| sqlx::Error::Io(std::io::Error::other(error)))?
    }
}

/// Whether `error` leaves a connection unusable (as opposed to a query the server refused).
fn is_connection_error(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) | sqlx::Error::PoolTimedOut)
        || super::connect::is_unavailable(error)
}
