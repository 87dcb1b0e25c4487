-- API keys. A key reads lake_<id>_<secret>: the id (16 hex digits) is public and names the key
-- in lists and in the audit log; the secret (32 random bytes, base64url) is shown once, when the
-- key is made, and only its SHA-256 is kept. A fast hash suffices: the secret is random, not a
-- password, so there is nothing to guess from its hash.
CREATE TABLE lake.api_keys (
    id            text COLLATE "C" PRIMARY KEY CHECK (id ~ '^[0-9a-f]{16}$'),
    principal     text COLLATE "C" NOT NULL REFERENCES lake.users (id),
    secret_sha256 bytea NOT NULL CHECK (length(secret_sha256) = 32),
    scopes        text[] NOT NULL
                  CHECK (cardinality(scopes) > 0 AND scopes <@ ARRAY['read', 'write']),
    label         text CHECK (length(label) <= 200),
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    name NOT NULL DEFAULT session_user,
    expires_at    timestamptz,
    revoked_at    timestamptz,
    last_used_at  timestamptz,
    -- Set when the key was rotated: the key that replaced it.
    replaced_by   text COLLATE "C" REFERENCES lake.api_keys (id)
);
CREATE INDEX api_keys_principal_idx ON lake.api_keys (principal);
ALTER TABLE lake.api_keys OWNER TO lake_owner;
-- Everything but the hash.
GRANT SELECT (id, principal, scopes, label, created_at, created_by, expires_at, revoked_at,
              last_used_at, replaced_by) ON lake.api_keys TO lake_admin;

COMMENT ON TABLE lake.api_keys IS
    'API keys (lake_<id>_<secret>): only the secret''s SHA-256 is kept.';
COMMENT ON COLUMN lake.api_keys.id IS
    'The key''s public id (16 hex digits), the <id> of lake_<id>_<secret>.';
COMMENT ON COLUMN lake.api_keys.principal IS 'The user or service the key authenticates as.';
COMMENT ON COLUMN lake.api_keys.secret_sha256 IS
    'SHA-256 of the key''s secret; the secret itself is never stored.';
COMMENT ON COLUMN lake.api_keys.scopes IS 'What the key allows: read and/or write.';
COMMENT ON COLUMN lake.api_keys.label IS 'Free text to tell keys apart.';
COMMENT ON COLUMN lake.api_keys.created_at IS 'When the key was made.';
COMMENT ON COLUMN lake.api_keys.created_by IS 'The database role that made it.';
COMMENT ON COLUMN lake.api_keys.expires_at IS 'When the key stops working (NULL: never).';
COMMENT ON COLUMN lake.api_keys.revoked_at IS 'When the key was revoked or rotated (NULL: active).';
COMMENT ON COLUMN lake.api_keys.last_used_at IS 'When the key last authenticated a session.';
COMMENT ON COLUMN lake.api_keys.replaced_by IS
    'The key that replaced this one when it was rotated.';
