-- Refresh token families: a session counts the refresh tokens it has spent (`generation`),
-- and its tokens name their session and generation under a tag of the master key's, so a
-- spent token is recognised as its session's for the session's whole life, not only the last
-- one. The sealed successor kept for retries is no longer needed (the successor is derived
-- again): the column stays, emptied. A session from before keeps its current random token
-- (generation 0) until it rotates into the family form.
ALTER TABLE sessions ADD COLUMN generation BIGINT NOT NULL DEFAULT 0;
UPDATE sessions SET sealed_refresh = NULL;
-- A retired signing key's private half is destroyed, so that writing `state` in the database
-- cannot bring it back: a retired key verifies nothing whatever its row says.
UPDATE signing_keys SET sealed_private = ''::bytea WHERE state = 'retired';
