-- The lake's principals: users (whose data the lake holds) and services (gateways that act on
-- behalf of users). API keys and OAuth identities belong to them. A disabled principal cannot
-- authenticate, and a service cannot act for a disabled user.
CREATE TABLE lake.users (
    id            text COLLATE "C" PRIMARY KEY
                  CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9._@:+-]{0,127}$'),
    kind          text NOT NULL DEFAULT 'user' CHECK (kind IN ('user', 'service')),
    display_name  text CHECK (length(display_name) <= 200),
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    name NOT NULL DEFAULT session_user,
    disabled_at   timestamptz
);
ALTER TABLE lake.users OWNER TO lake_owner;
GRANT SELECT ON lake.users TO lake_admin;

COMMENT ON TABLE lake.users IS 'The lake''s principals: users and services.';
COMMENT ON COLUMN lake.users.id IS 'The principal''s id, e.g. alice or gateway.';
COMMENT ON COLUMN lake.users.kind IS
    'user (whose data the lake holds) or service (acts on behalf of users).';
COMMENT ON COLUMN lake.users.display_name IS 'A name for people.';
COMMENT ON COLUMN lake.users.created_at IS 'When the principal was created.';
COMMENT ON COLUMN lake.users.created_by IS 'The database role that created it.';
COMMENT ON COLUMN lake.users.disabled_at IS
    'When it was disabled (NULL: enabled); a disabled principal cannot authenticate.';
