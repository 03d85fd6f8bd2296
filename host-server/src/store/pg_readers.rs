//! The hot read on PostgreSQL: the account and standing behind every authenticated request,
//! on a few connections of its own, outside sqlx's pool, many requests to a statement.
//!
//! The pool pings each connection when it hands it out and again when it takes it back (to
//! find one the server closed, or one a cancelled query left mid-exchange), so a one-row
//! lookup cost three round trips to the server. These connections are never pinged: each
//! belongs to a reader task, which takes every lookup waiting in the queue (up to
//! [`MAX_BATCH`]) and answers them with one statement. Under light load a batch is one
//! lookup and nothing waits for company; under heavy load the server runs one statement for
//! many requests instead of one each, which is where its time went. A request that is
//! cancelled cannot leave a connection mid-exchange (the reader finishes the exchange), and a
//! connection that fails or does not answer in time is dropped and the batch tried once on a
//! fresh one (a server restart closes every connection; the first batch on each then finds
//! out).

use std::sync::Arc;
use std::time::Duration;

use sqlx::ConnectOptions;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgDatabaseError, PgSeverity};
use tokio::sync::{Mutex, mpsc, oneshot};

use super::Standing;

/// How long one statement (connecting included) may take before the connection is given up.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request waits for its answer: a place in the queue and two attempts.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(12);
/// At most this many lookups to a statement.
const MAX_BATCH: usize = 64;
/// Lookups that may wait for a reader; a request beyond them waits for room.
const QUEUE: usize = 1024;

/// One request's lookup and where its answer goes.
struct Lookup {
    id: i64,
    jti: String,
    sid: String,
    now: i64,
    answer: oneshot::Sender<Result<Option<Standing>, Failed>>,
}

/// Why a batch failed, for each of its requests (an `sqlx::Error` cannot be copied).
#[derive(Clone)]
struct Failed {
    message: String,
    unavailable: bool,
}

impl From<Failed> for sqlx::Error {
    fn from(failed: Failed) -> Self {
        // Kept apart by what callers ask of it: whether to say "try again later" (a 503).
        if failed.unavailable {
            sqlx::Error::Io(std::io::Error::other(failed.message))
        } else {
            sqlx::Error::Protocol(failed.message)
        }
    }
}

/// A row of the batched statement: the lookup's position (from 1) and its answer.
#[derive(sqlx::FromRow)]
struct Numbered {
    n: i64,
    #[sqlx(flatten)]
    standing: Standing,
}

pub(super) struct PgReaders {
    queue: mpsc::Sender<Lookup>,
}

impl PgReaders {
    /// `count` (at least one) reader tasks, each with a connection to the server `options`
    /// names (opened when first used), answering lookups with `sql`
    /// ([`super::standing::STANDING_MANY`]). They end when this is dropped.
    pub fn new(options: PgConnectOptions, count: usize, sql: &'static str) -> Self {
        let (queue, waiting) = mpsc::channel(QUEUE);
        let waiting = Arc::new(Mutex::new(waiting));
        for _ in 0..count.max(1) {
            tokio::spawn(supervise(Arc::clone(&waiting), options.clone(), sql));
        }
        Self { queue }
    }

    /// The user `id` and the standing of token `jti` of session `sid` (empty: none) at `now`.
    pub async fn standing(&self, id: i64, jti: &str, sid: &str, now: i64) -> Result<Option<Standing>, sqlx::Error> {
        let (answer, answered) = oneshot::channel();
        let lookup = Lookup { id, jti: jti.to_owned(), sid: sid.to_owned(), now, answer };
        let asked = async {
            self.queue.send(lookup).await.map_err(|_| sqlx::Error::PoolClosed)?;
            answered.await.map_err(|_| sqlx::Error::WorkerCrashed)?.map_err(sqlx::Error::from)
        };
        tokio::time::timeout(ANSWER_TIMEOUT, asked).await.unwrap_or(Err(sqlx::Error::PoolTimedOut))
    }
}

/// Keeps a reader running until the queue closes: one that panics (the requests of its batch
/// then fail, as unavailable) is replaced, so lookups never stop for good.
async fn supervise(waiting: Arc<Mutex<mpsc::Receiver<Lookup>>>, options: PgConnectOptions, sql: &'static str) {
    loop {
        match tokio::spawn(read(Arc::clone(&waiting), options.clone(), sql)).await {
            Ok(()) => return,
            Err(error) if error.is_panic() => tracing::error!("a standing-lookup reader failed; starting another"),
            Err(_) => return, // the runtime is shutting down
        }
    }
}

/// A reader: takes what waits in the queue, answers it in one statement, until the queue closes.
async fn read(waiting: Arc<Mutex<mpsc::Receiver<Lookup>>>, options: PgConnectOptions, sql: &'static str) {
    let mut connection = None;
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        if waiting.lock().await.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return;
        }
        // Requests that gave up (cancelled, timed out) need no answer.
        batch.retain(|lookup: &Lookup| !lookup.answer.is_closed());
        if !batch.is_empty() {
            // A request may have gone since: its answer is dropped.
            match answer(&mut connection, &options, sql, &batch).await {
                Ok(found) => batch.drain(..).zip(found).for_each(|(lookup, found)| {
                    let _ = lookup.answer.send(Ok(found));
                }),
                Err(failed) => batch.drain(..).for_each(|lookup| {
                    let _ = lookup.answer.send(Err(failed.clone()));
                }),
            }
        }
    }
}

/// Each lookup's answer, in the batch's order. A connection that fails is never used again
/// (it may be closed or left mid-exchange); one held since an earlier batch, which the server
/// may have closed since (a restart, an idle timeout), is replaced and the batch tried once more.
async fn answer(
    connection: &mut Option<PgConnection>,
    options: &PgConnectOptions,
    sql: &'static str,
    batch: &[Lookup],
) -> Result<Vec<Option<Standing>>, Failed> {
    let ids: Vec<i64> = batch.iter().map(|lookup| lookup.id).collect();
    let jtis: Vec<&str> = batch.iter().map(|lookup| lookup.jti.as_str()).collect();
    let sids: Vec<&str> = batch.iter().map(|lookup| lookup.sid.as_str()).collect();
    let nows: Vec<i64> = batch.iter().map(|lookup| lookup.now).collect();
    let held = connection.is_some();
    let mut attempt = async || {
        let found = tokio::time::timeout(LOOKUP_TIMEOUT, async {
            if connection.is_none() {
                *connection = Some(options.connect().await?);
            }
            let open = connection.as_mut().expect("connected above");
            sqlx::query_as::<_, Numbered>(sql).bind(&ids).bind(&jtis).bind(&sids).bind(&nows).fetch_all(open).await
        })
        .await
        .unwrap_or(Err(sqlx::Error::PoolTimedOut));
        if found.is_err() {
            connection.take();
        }
        found
    };
    let found = match attempt().await {
        Err(error) if held && is_connection_error(&error) => attempt().await,
        found => found,
    };
    match found {
        Ok(rows) => place(rows, batch.len()),
        Err(error) => Err(Failed { message: error.to_string(), unavailable: super::outage::is_unavailable(&error) }),
    }
}

/// The rows found, each at its lookup's place (`None` where no account matched).
fn place(rows: Vec<Numbered>, lookups: usize) -> Result<Vec<Option<Standing>>, Failed> {
    let mut answers = vec![None; lookups];
    for row in rows {
        let slot = usize::try_from(row.n).ok().and_then(|n| n.checked_sub(1)).and_then(|i| answers.get_mut(i));
        match slot {
            Some(slot @ None) => *slot = Some(row.standing),
            _ => {
                return Err(Failed {
                    message: format!("the batched lookup answered row {} twice or out of range", row.n),
                    unavailable: false,
                });
            }
        }
    }
    Ok(answers)
}

/// Whether `error` says the connection is unusable (as opposed to a query the server refused):
/// closed, broken, silent, or ended by the server with a FATAL error.
fn is_connection_error(error: &sqlx::Error) -> bool {
    let fatal = |db: &dyn sqlx::error::DatabaseError| {
        db.try_downcast_ref::<PgDatabaseError>()
            .is_some_and(|pg| matches!(pg.severity(), PgSeverity::Fatal | PgSeverity::Panic))
    };
    match error {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) | sqlx::Error::PoolTimedOut => true,
        sqlx::Error::Database(db) if fatal(db.as_ref()) => true,
        _ => super::outage::is_unavailable(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn standing(id: i64) -> Standing {
        Standing {
            user: super::super::User {
                id,
                email: format!("{id}@example.com"),
                username: None,
                hashed_password: String::new(),
                is_active: true,
                created_at: 0,
            },
            tokens_valid_after: 0,
            revoked: false,
            session_live: true,
        }
    }

    #[test]
    fn rows_go_to_their_lookups_and_a_missing_one_is_none() {
        let rows = vec![Numbered { n: 3, standing: standing(30) }, Numbered { n: 1, standing: standing(10) }];
        let placed = place(rows, 3).unwrap_or_else(|_| panic!("placed"));
        let ids: Vec<Option<i64>> = placed.iter().map(|found| found.as_ref().map(|s| s.user.id)).collect();
        assert_eq!(ids, [Some(10), None, Some(30)]);
    }

    #[test]
    fn a_row_out_of_place_fails_the_batch_rather_than_answering_the_wrong_request() {
        for n in [0, 4, -1] {
            assert!(place(vec![Numbered { n, standing: standing(1) }], 3).is_err(), "{n}");
        }
        let twice = vec![Numbered { n: 1, standing: standing(1) }, Numbered { n: 1, standing: standing(2) }];
        assert!(place(twice, 1).is_err());
    }
}
