-- Links from an OAuth2 identity (provider and subject, as in a verified ID token's iss/sub) to a
-- lake user, so a gateway that verified a token can act for that user with lake.act_as_oauth().
CREATE TABLE lake.oauth_identities (
    provider    text NOT NULL CHECK (provider IN ('google', 'github')),
    subject     text COLLATE "C" NOT NULL CHECK (subject <> '' AND length(subject) <= 255),
    user_id     text COLLATE "C" NOT NULL REFERENCES lake.users (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  name NOT NULL DEFAULT session_user,
    PRIMARY KEY (provider, subject)
);
CREATE INDEX oauth_identities_user_idx ON lake.oauth_identities (user_id);
ALTER TABLE lake.oauth_identities OWNER TO lake_owner;
GRANT SELECT ON lake.oauth_identities TO lake_admin;

COMMENT ON TABLE lake.oauth_identities IS
    'OAuth identities (provider, subject) linked to lake users.';
COMMENT ON COLUMN lake.oauth_identities.provider IS 'The OAuth provider: google or github.';
COMMENT ON COLUMN lake.oauth_identities.subject IS 'The provider''s subject (sub) for the person.';
COMMENT ON COLUMN lake.oauth_identities.user_id IS 'The lake user the identity is linked to.';
COMMENT ON COLUMN lake.oauth_identities.created_at IS 'When the link was made.';
COMMENT ON COLUMN lake.oauth_identities.created_by IS 'The database role that made it.';
