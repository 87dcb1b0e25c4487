-- Scope role: writes user data (INSERT, UPDATE, DELETE under row-level security, COPY into the
-- inbox, the ingest functions). With lake_read it makes lake_app; alone it makes a write-only
-- login (an uploader), whatever its key allows.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'lake_write') THEN
        CREATE ROLE lake_write NOLOGIN;
    END IF;
END
$$;
