-- Two-factor login. The TOTP secret is kept sealed under the master key (never in clear), bound
-- to its account; it is needed at login only once confirmed. `last_step` is the last 30-second
-- step a code was accepted for: one conditional update moves it forward, so a code is good once,
-- also between hosts.
CREATE TABLE second_factors (
    user_id       BIGINT  PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    sealed_secret BYTEA   NOT NULL,
    created_at    BIGINT  NOT NULL,
    confirmed_at  BIGINT,
    last_step     BIGINT
);
-- Recovery codes, as argon2id hashes (never the codes); each is spent once.
CREATE TABLE recovery_codes (
    id      BIGSERIAL PRIMARY KEY,
    user_id BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    hash    TEXT    NOT NULL,
    used_at BIGINT
);
CREATE INDEX recovery_codes_by_user ON recovery_codes (user_id);
-- How a session's login was made (RFC 8176 `amr` values, space-separated), which its access
-- tokens carry, refreshes included.
ALTER TABLE sessions ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';
