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
