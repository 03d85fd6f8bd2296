//! Telling an outage (the database could not be reached: worth trying again later) from a
//! refusal or a failed operation. Asked by the pool's callers and the standing readers alike,
//! so it stands apart from both.

/// Whether `error` means the database could not be reached, rather than that
/// it refused or failed an operation.
pub(super) fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        // PostgreSQL: class 08 (connection exception), the server shutting down
        // or starting (57P01-57P03), a connection ended for idling (57P05), too
        // many connections (53300).
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02" | "57P03" | "57P05" | "53300")
        }),
        _ => false,
    }
}
