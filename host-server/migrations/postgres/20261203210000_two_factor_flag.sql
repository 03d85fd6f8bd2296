-- Whether the account's logins need a second factor, on the account's row itself: a session is
-- started only if this is off or the login gave one, in the same statement (and, on PostgreSQL,
-- under the same row lock as turning it on), so no password-only session slips in while two-
-- factor login is being turned on.
ALTER TABLE users ADD COLUMN two_factor BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE users SET two_factor = TRUE WHERE id IN (SELECT user_id FROM second_factors WHERE confirmed_at IS NOT NULL);
