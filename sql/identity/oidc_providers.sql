-- OpenID Connect providers whose ID tokens lake.authenticate_oidc() checks itself: the issuer
-- (iss), the audiences (the client ids the lake's applications registered) and the provider's
-- signing keys (its JWKS). The database fetches nothing: the keys come from an administrator's
-- lake.set_oidc_provider(), which `lake oidc add` / `lake oidc refresh` call with the discovery
-- document and JWKS they fetch. When the provider rotates its keys, a token's kid is unknown
-- until the next refresh (the refusal says so; the client refreshes and retries once).
CREATE TABLE lake.oidc_providers (
    name        text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_-]{0,39}$' AND name <> 'github'),
    issuer      text NOT NULL UNIQUE CHECK (issuer ~ '^https?://' AND length(issuer) <= 500),
    audiences   text[] NOT NULL CHECK (cardinality(audiences) > 0),
    jwks        jsonb NOT NULL CHECK (jsonb_typeof(jwks -> 'keys') = 'array'),
    fetched_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  name NOT NULL DEFAULT session_user
);
ALTER TABLE lake.oidc_providers OWNER TO lake_owner;
GRANT SELECT ON lake.oidc_providers TO lake_admin;

COMMENT ON TABLE lake.oidc_providers IS
    'OpenID Connect providers (issuer, audiences, signing keys) for lake.authenticate_oidc.';
COMMENT ON COLUMN lake.oidc_providers.name IS
    'The provider''s name in lake.oauth_identities, e.g. google.';
COMMENT ON COLUMN lake.oidc_providers.issuer IS 'The iss its ID tokens carry.';
COMMENT ON COLUMN lake.oidc_providers.audiences IS 'The aud values (client ids) accepted.';
COMMENT ON COLUMN lake.oidc_providers.jwks IS 'The provider''s signing keys (a JWKS).';
COMMENT ON COLUMN lake.oidc_providers.fetched_at IS 'When the keys were last set.';
COMMENT ON COLUMN lake.oidc_providers.updated_by IS 'The database role that set them.';
