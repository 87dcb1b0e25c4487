-- Scope role: reads user data (under row-level security, for the session's lake user). With
-- lake_write it makes lake_app; alone it makes a read-only login, whatever its key allows.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'lake_read') THEN
        CREATE ROLE lake_read NOLOGIN;
    END IF;
END
$$;
