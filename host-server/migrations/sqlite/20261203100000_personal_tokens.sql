-- Personal access tokens: credentials for machines, kept as the SHA-256 digest of the token
-- (never the token) and its first characters, for recognition. A token's row stays a while
-- after it expired or was revoked, so its use is answered with why; a name is unique among an
-- account's tokens not revoked (one that expired is retired when its name is taken again). `seq` orders an
-- account's tokens as they were made (newest first in lists), also within one second.
CREATE TABLE personal_tokens (
    id           TEXT    PRIMARY KEY NOT NULL,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    seq          INTEGER NOT NULL,
    name         TEXT    NOT NULL,
    digest       TEXT    NOT NULL UNIQUE,
    shown        TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    last_address TEXT,
    revoked_at   INTEGER
) STRICT;
CREATE UNIQUE INDEX personal_tokens_live_names ON personal_tokens (user_id, name) WHERE revoked_at IS NULL;
