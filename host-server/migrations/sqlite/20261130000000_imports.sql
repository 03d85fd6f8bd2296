-- One row per `users import` that wrote accounts: hosts watch the newest id and survey the
-- stored hashes' costs again when it changes, so an imported hash's check time shows in no
-- failed login for longer than a poll.
CREATE TABLE imports (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    accounts    INTEGER NOT NULL,
    imported_at INTEGER NOT NULL DEFAULT (unixepoch())
);
