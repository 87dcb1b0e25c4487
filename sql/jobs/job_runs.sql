-- One row per run of a job through lake.run_maintenance: when, for which "now", how it ended and
-- what it did. Kept 30 days (the purge_logs job). Written by the lake's functions only.
CREATE TABLE lake.job_runs (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job         text NOT NULL,
    -- The time the job worked for: the clock, or the p_now given to lake.run_maintenance.
    job_now     timestamptz NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at timestamptz,
    -- running: started and not (yet) finished; a run whose session died stays so, and the next
    -- run of the job shows it as abandoned. skipped: another run of the job was still going.
    status      text NOT NULL DEFAULT 'running'
                CHECK (status IN ('running', 'ok', 'failed', 'skipped')),
    -- What the job did, per dataset, and each dataset's error ({"errors": {...}}).
    details     jsonb,
    error       text,
    db_role     name NOT NULL DEFAULT session_user,
    pid         integer NOT NULL DEFAULT pg_backend_pid(),
    CHECK ((status = 'running') = (finished_at IS NULL))
);
CREATE INDEX job_runs_job_started_idx ON lake.job_runs (job, started_at DESC);
ALTER TABLE lake.job_runs OWNER TO lake_owner;
GRANT SELECT ON lake.job_runs TO lake_admin;

COMMENT ON TABLE lake.job_runs IS
    'Runs of the lake''s jobs through lake.run_maintenance (30 days).';

COMMENT ON COLUMN lake.job_runs.id IS 'The run''s id.';
COMMENT ON COLUMN lake.job_runs.job IS 'The job (lake.job_defs.name).';
COMMENT ON COLUMN lake.job_runs.job_now IS
    'The time the job worked for: the clock, or the now given to lake.run_maintenance.';
COMMENT ON COLUMN lake.job_runs.started_at IS 'When the run started.';
COMMENT ON COLUMN lake.job_runs.finished_at IS 'When it finished (NULL while running).';
COMMENT ON COLUMN lake.job_runs.status IS
    'running, ok, failed or skipped (another run was still going).';
COMMENT ON COLUMN lake.job_runs.details IS
    'What the job did, per dataset, with each dataset''s error.';
COMMENT ON COLUMN lake.job_runs.error IS 'The error that failed the run.';
COMMENT ON COLUMN lake.job_runs.db_role IS 'The database role that ran it.';
COMMENT ON COLUMN lake.job_runs.pid IS 'The backend that ran it.';
