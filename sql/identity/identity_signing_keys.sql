-- The keys the primary signs identity tokens with (lake.identity_token) and a hot standby checks
-- them with (lake.token_identity): a standby cannot write lake_internal.session_identity, so a
-- session there proves who it is with a token instead. Physical replication carries this table to
-- every standby. Only its owner reads it: no application role has any right on it, and only those
-- two SECURITY DEFINER functions use it. One key is made with the schema; a newer one
-- (higher id) signs from the moment it commits, while older ones still verify the tokens they
-- signed until those expire.
CREATE TABLE lake_internal.identity_signing_keys (
    id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    secret      bytea NOT NULL DEFAULT public.gen_random_bytes(32) CHECK (length(secret) >= 32),
    created_at  timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE lake_internal.identity_signing_keys OWNER TO lake_owner;
REVOKE ALL ON lake_internal.identity_signing_keys FROM PUBLIC;
INSERT INTO lake_internal.identity_signing_keys DEFAULT VALUES;

COMMENT ON TABLE lake_internal.identity_signing_keys IS
    'HMAC keys of identity tokens (lake.identity_token), replicated to standbys; owner only.';
