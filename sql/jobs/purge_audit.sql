-- Job purge_audit: audit log months older than 365 days, dropped with the chain kept verifiable
-- (daily)
INSERT INTO lake.job_defs (name, position, kind, schedule, command, description)
VALUES ('purge_audit', 60, 'procedure', '40 2 * * *', 'CALL lake.run_maintenance(''purge_audit'')',
        'audit log months older than 365 days, dropped with the chain kept verifiable (daily)');
