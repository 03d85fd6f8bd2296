-- Login attempts in flight: an attempt is counted when it is admitted (so parallel
-- guesses cannot slip past together) and settled when it fails. A refusal can then tell
-- a burst of logins still running (come back in a second) from failed ones (come back
-- when the window allows). Rows from before are settled failures. `attempt` is the
-- attempt's own random id.
ALTER TABLE login_attempts ADD COLUMN attempt INTEGER;
ALTER TABLE login_attempts ADD COLUMN settled INTEGER NOT NULL DEFAULT 1 CHECK (settled IN (0, 1));
CREATE INDEX login_attempts_by_attempt ON login_attempts (attempt);
