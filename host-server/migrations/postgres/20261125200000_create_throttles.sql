-- Login attempts, counted against an account (its email key, whether or not it
-- exists) and a client address within a sliding window. A throttled attempt is
-- not recorded, so a lockout ends when the window passes; a successful login
-- removes its account's rows. Rows older than the window are purged.
CREATE TABLE login_attempts (
    account TEXT   NOT NULL,
    address TEXT   NOT NULL,
    at      BIGINT NOT NULL
);
CREATE INDEX login_attempts_by_account ON login_attempts (account, at);
CREATE INDEX login_attempts_by_address ON login_attempts (address, at);

-- Registrations that reached hashing, per client address, for the hourly allowance.
CREATE TABLE signup_attempts (
    address TEXT   NOT NULL,
    at      BIGINT NOT NULL
);
CREATE INDEX signup_attempts_by_address ON signup_attempts (address, at);
