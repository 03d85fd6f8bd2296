-- Token signing keys, shared by every host on the database. The private half is sealed
-- (XChaCha20-Poly1305) under the key-encryption key in each host's master-key file, so a
-- dump of this table alone signs nothing. At most one key is active (it signs); the
-- others verify until they are retired. The legacy key is the pre-0.2 HS256 secret, whose
-- tokens carry no kid.
CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY NOT NULL,
    algorithm TEXT NOT NULL CHECK (algorithm IN ('HS256', 'EdDSA')),
    state TEXT NOT NULL CHECK (state IN ('active', 'verifying', 'retired')),
    sealed_private BYTEA NOT NULL,
    public_jwk TEXT,
    legacy BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    retired_at BIGINT
);
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (state) WHERE state = 'active';
