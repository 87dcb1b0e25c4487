-- The lake's scheduled jobs for an admin in psql (and `lake jobs`): schedule, whether pg_cron has
-- them, and how they last went. Runs through lake.run_maintenance come from lake.job_runs; the
-- statement jobs (vacuum, reindex) from pg_cron's own run log.
CREATE VIEW lake.jobs AS
SELECT d.name                                         AS job,
       d.schedule,
       d.kind,
       c.jobid IS NOT NULL                            AS scheduled,
       c.active,
       CASE WHEN d.kind = 'procedure' THEN r.started_at ELSE c.last_start END  AS last_start,
       CASE WHEN d.kind = 'procedure' THEN r.finished_at ELSE c.last_end END   AS last_end,
       CASE WHEN d.kind = 'procedure' THEN r.status ELSE c.last_status END     AS last_status,
       CASE WHEN d.kind = 'procedure' THEN r.error
            WHEN c.last_status = 'failed' THEN c.last_message END              AS last_error,
       r.details                                      AS last_details,
       coalesce(f.failures, 0) + CASE WHEN d.kind = 'statement'
                                      THEN coalesce(c.failures_24h, 0) ELSE 0 END AS failures_24h,
       d.description,
       d.command
  FROM lake.job_defs AS d
  LEFT JOIN lake_internal._cron_jobs() AS c ON c.job = d.name
  LEFT JOIN LATERAL (SELECT x.started_at, x.finished_at, x.status, x.error, x.details
                       FROM lake.job_runs AS x
                      WHERE x.job = d.name
                      ORDER BY x.id DESC LIMIT 1) AS r ON true
  LEFT JOIN LATERAL (SELECT count(*) AS failures
                       FROM lake.job_runs AS x
                      WHERE x.job = d.name AND x.status = 'failed'
                        AND x.started_at > now() - interval '24 hours') AS f ON true;
ALTER VIEW lake.jobs OWNER TO lake_owner;
GRANT SELECT ON lake.jobs TO lake_admin;

COMMENT ON VIEW lake.jobs IS 'The scheduled jobs, whether pg_cron has them, and their last run.';
COMMENT ON COLUMN lake.jobs.job IS 'The job''s name.';
COMMENT ON COLUMN lake.jobs.schedule IS 'When it runs (cron syntax).';
COMMENT ON COLUMN lake.jobs.kind IS 'procedure or statement.';
COMMENT ON COLUMN lake.jobs.scheduled IS 'Whether pg_cron has it.';
COMMENT ON COLUMN lake.jobs.active IS 'Whether pg_cron''s entry is active.';
COMMENT ON COLUMN lake.jobs.last_start IS 'When its last run started.';
COMMENT ON COLUMN lake.jobs.last_end IS 'When its last run ended.';
COMMENT ON COLUMN lake.jobs.last_status IS 'How its last run ended.';
COMMENT ON COLUMN lake.jobs.last_error IS 'The last run''s error, if it failed.';
COMMENT ON COLUMN lake.jobs.last_details IS 'What the last run did.';
COMMENT ON COLUMN lake.jobs.failures_24h IS 'Failed runs in the last 24 hours.';
COMMENT ON COLUMN lake.jobs.description IS 'What the job does.';
COMMENT ON COLUMN lake.jobs.command IS 'What pg_cron runs.';
