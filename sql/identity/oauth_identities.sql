-- Links from an OAuth2 identity (provider and subject, as in a verified ID token's iss/sub) to a
-- lake user: lake.authenticate_oidc() checks an OpenID Connect ID token itself and gives the
-- session that user with the link's scopes; for providers without ID tokens (github) a gateway
-- that verified the sign-in acts for the user with lake.act_as_oauth(). lake.link_oauth() admits
-- the providers it knows (google, github, and those of lake.oidc_providers).
CREATE TABLE lake.oauth_identities (
    provider    text NOT NULL CHECK (provider ~ '^[a-z][a-z0-9_-]{0,39}$'),
    subject     text COLLATE "C" NOT NULL CHECK (subject <> '' AND length(subject) <= 255),
    user_id     text COLLATE "C" NOT NULL REFERENCES lake.users (id),
    -- What a session signed in through this identity (lake.authenticate_oidc) may do.
    scopes      text[] NOT NULL DEFAULT ARRAY['read', 'write']
                CHECK (scopes <@ ARRAY['read', 'write'] AND cardinality(scopes) > 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  name NOT NULL DEFAULT session_user,
    PRIMARY KEY (provider, subject)
);
CREATE INDEX oauth_identities_user_idx ON lake.oauth_identities (user_id);
ALTER TABLE lake.oauth_identities OWNER TO lake_owner;
GRANT SELECT ON lake.oauth_identities TO lake_admin;

COMMENT ON TABLE lake.oauth_identities IS
    'OAuth identities (provider, subject) linked to lake users.';
COMMENT ON COLUMN lake.oauth_identities.provider IS
    'The OAuth provider: google, github, or an OpenID Connect provider of lake.oidc_providers.';
COMMENT ON COLUMN lake.oauth_identities.subject IS 'The provider''s subject (sub) for the person.';
COMMENT ON COLUMN lake.oauth_identities.user_id IS 'The lake user the identity is linked to.';
COMMENT ON COLUMN lake.oauth_identities.scopes IS
    'The scopes (read, write) of a session signed in with lake.authenticate_oidc.';
COMMENT ON COLUMN lake.oauth_identities.created_at IS 'When the link was made.';
COMMENT ON COLUMN lake.oauth_identities.created_by IS 'The database role that made it.';
