-- Accounts. `email` keeps the address as registered; `email_key` is its
-- lower-cased form, which makes addresses unique case-insensitively.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    email         TEXT    NOT NULL,
    email_key     TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    is_active     INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
    created_at    INTEGER NOT NULL DEFAULT (unixepoch())
) STRICT;
