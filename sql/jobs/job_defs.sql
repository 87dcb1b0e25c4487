-- The lake's scheduled jobs: one row per job, written by the files in sql/jobs/ (one job per file).
-- lake_internal._install_jobs() puts them into pg_cron; lake.jobs shows them with their last runs.
CREATE TABLE lake.job_defs (
    -- pg_cron knows the job as 'lake.<name>'.
    name        text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,40}$'),
    -- cron syntax, in the server's time zone (UTC in the embedded cluster).
    schedule    text NOT NULL,
    -- 'procedure': the work runs inside lake.run_maintenance(name), which records every run in
    -- lake.job_runs. 'statement': a command PostgreSQL forbids inside a procedure (VACUUM,
    -- REINDEX CONCURRENTLY), which pg_cron runs as it stands; pg_cron records those runs.
    kind        text NOT NULL CHECK (kind IN ('procedure', 'statement')),
    -- What pg_cron runs.
    command     text NOT NULL,
    description text NOT NULL,
    -- Order in which lake.run_maintenance() runs all jobs.
    position    integer NOT NULL UNIQUE
);
ALTER TABLE lake.job_defs OWNER TO lake_owner;
GRANT SELECT ON lake.job_defs TO lake_admin;

COMMENT ON TABLE lake.job_defs IS
    'The scheduled jobs (sql/jobs/); pg_cron runs them as lake.<name>.';

COMMENT ON COLUMN lake.job_defs.name IS 'The job''s name; pg_cron knows it as lake.<name>.';
COMMENT ON COLUMN lake.job_defs.schedule IS 'When it runs, in cron syntax (server time zone).';
COMMENT ON COLUMN lake.job_defs.kind IS
    'procedure (runs in lake.run_maintenance) or statement (VACUUM, REINDEX).';
COMMENT ON COLUMN lake.job_defs.command IS 'What pg_cron runs.';
COMMENT ON COLUMN lake.job_defs.description IS 'What the job does.';
COMMENT ON COLUMN lake.job_defs.position IS 'Order in which lake.run_maintenance() runs all jobs.';
