-- How many runs of each job ended how, since the lake began: counters for Prometheus
-- (lake_job_runs_total), which lake.job_runs cannot give because it keeps 30 days. Written by
-- lake_internal._job_finish; one job runs at a time, so its row is never contended.
CREATE TABLE lake_internal.job_outcomes (
    job    text NOT NULL,
    status text NOT NULL CHECK (status IN ('ok', 'failed')),
    runs   bigint NOT NULL DEFAULT 0 CHECK (runs >= 0),
    PRIMARY KEY (job, status)
);
ALTER TABLE lake_internal.job_outcomes OWNER TO lake_owner;
GRANT SELECT ON lake_internal.job_outcomes TO lake_admin;

COMMENT ON TABLE lake_internal.job_outcomes IS
    'Runs of each job by outcome since the lake began (lake_job_runs_total).';
COMMENT ON COLUMN lake_internal.job_outcomes.job IS 'The job (lake.job_defs.name).';
COMMENT ON COLUMN lake_internal.job_outcomes.status IS 'ok or failed.';
COMMENT ON COLUMN lake_internal.job_outcomes.runs IS 'How many runs ended so.';
