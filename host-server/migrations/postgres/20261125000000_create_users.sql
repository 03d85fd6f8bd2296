-- Accounts. `email` keeps the address as registered; `email_key` is its
-- case-folded form, which makes addresses unique case-insensitively.
-- Times are Unix seconds, as in the SQLite schema.
CREATE TABLE users (
    id            BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email         TEXT    NOT NULL,
    email_key     TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    is_active     BOOLEAN NOT NULL DEFAULT TRUE,
    created_at    BIGINT  NOT NULL DEFAULT (extract(epoch FROM now())::BIGINT)
);
