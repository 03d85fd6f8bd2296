-- Sessions: one per successful password login. Every access token names its session
-- (`sid`), and the per-request check reads the session with the account, so ending a
-- session ends its tokens at once on every host. A session holds the SHA-256 digest of its
-- current refresh token (never the token), the digest of the one just spent (for retries
-- within the grace, and to tell a replay after it), and the current token sealed under the
-- master key (a dump of this table holds no usable refresh token). Times are Unix seconds.
CREATE TABLE sessions (
    id                 TEXT    PRIMARY KEY NOT NULL,
    user_id            INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id          TEXT    NOT NULL,
    created_at         INTEGER NOT NULL,
    created_address    TEXT    NOT NULL,
    created_user_agent TEXT    NOT NULL,
    last_used_at       INTEGER NOT NULL,
    last_address       TEXT    NOT NULL,
    last_user_agent    TEXT    NOT NULL,
    idle_expires_at    INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL,
    revoked_at         INTEGER,
    refresh_digest     TEXT    NOT NULL UNIQUE,
    previous_digest    TEXT    UNIQUE,
    rotated_at         INTEGER,
    sealed_refresh     BLOB
) STRICT;
CREATE INDEX sessions_by_user ON sessions (user_id, last_used_at);
