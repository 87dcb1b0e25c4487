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
