-- Server-side logout. One token: its `jti` is listed until the token's own
-- expiry (then purged). Every token of a user: tokens issued before
-- `tokens_valid_after` (Unix seconds) are refused, with no row per token.
CREATE TABLE revoked_tokens (
    jti        TEXT   PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX revoked_tokens_by_expiry ON revoked_tokens (expires_at);

ALTER TABLE users ADD COLUMN tokens_valid_after BIGINT NOT NULL DEFAULT 0;
