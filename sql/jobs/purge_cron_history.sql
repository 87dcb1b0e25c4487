-- Job purge_cron_history: pg_cron run history of the lake jobs older than 30 days (daily)
INSERT INTO lake.job_defs (name, position, kind, schedule, command, description)
VALUES ('purge_cron_history', 80, 'procedure', '55 2 * * *', 'CALL lake.run_maintenance(''purge_cron_history'')',
        'pg_cron run history of the lake jobs older than 30 days (daily)');
