-- Job seal: the safety net of the sealer (lake.seal()): committed audit entries and changes wait at
-- most a minute (pg_cron's finest schedule) when no bridge runs. A statement job: a run that
-- finds nothing writes nothing, and pg_cron records the runs (purge_cron_history trims them).
INSERT INTO lake.job_defs (name, position, kind, schedule, command, description)
VALUES ('seal', 5, 'statement', '* * * * *', 'SELECT lake.seal()',
        'chain committed audit entries and number committed changes (every minute)');
