-- Group role for applications: reads and writes user data (lake_read and lake_write), always
-- under row-level security.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'lake_app') THEN
        CREATE ROLE lake_app NOLOGIN;
    END IF;
END
$$;
GRANT lake_read, lake_write TO lake_app;
