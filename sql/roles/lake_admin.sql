-- Group role for people and jobs that administer the lake (datasets, quarantine decisions,
-- acting on behalf of a user). Grant it to a login role; it has no BYPASSRLS.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'lake_admin') THEN
        CREATE ROLE lake_admin NOLOGIN;
    END IF;
END
$$;
