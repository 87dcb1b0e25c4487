-- Job purge_changes: change events older than 7 days (daily)
INSERT INTO lake.job_defs (name, position, kind, schedule, command, description)
VALUES ('purge_changes', 50, 'procedure', '30 2 * * *', 'CALL lake.run_maintenance(''purge_changes'')',
        'change events older than 7 days (daily)');
