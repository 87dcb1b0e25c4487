-- Job purge_logs: the lake job log (lake.job_runs) older than 30 days (daily)
INSERT INTO lake.job_defs (name, position, kind, schedule, command, description)
VALUES ('purge_logs', 70, 'procedure', '50 2 * * *', 'CALL lake.run_maintenance(''purge_logs'')',
        'the lake job log (lake.job_runs) older than 30 days (daily)');
