-- The users table as Loom's design names it: the hash column is
-- `hashed_password`, and an account may have a username, unique regardless of
-- case through `username_key` (its lower-cased form; NULL when there is none).
ALTER TABLE users RENAME COLUMN password_hash TO hashed_password;
ALTER TABLE users ADD COLUMN username TEXT;
ALTER TABLE users ADD COLUMN username_key TEXT;
CREATE UNIQUE INDEX users_username_unique ON users (username_key);
