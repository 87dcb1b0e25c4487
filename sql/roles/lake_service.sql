-- Group role for gateways that act on behalf of users: everything lake_app may do, plus
-- lake.act_as() once the session has authenticated with a service API key. Grant it to a login
-- role; it has no BYPASSRLS.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'lake_service') THEN
        CREATE ROLE lake_service NOLOGIN;
    END IF;
END
$$;
GRANT lake_app TO lake_service;
