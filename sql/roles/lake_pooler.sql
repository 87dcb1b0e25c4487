-- The role pgbouncer (`lake up --with pgbouncer`) logs in as to look up a client's SCRAM
-- secret (auth_query: lake_pooler.user_secret). It may do nothing else: no lake role is granted
-- to it. `lake up --with pgbouncer` gives it LOGIN and a password of its own.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'lake_pooler') THEN
        CREATE ROLE lake_pooler NOLOGIN;
    END IF;
END
$$;
