-- Job verify_audit: the whole audit chain checked, the verdict kept for the metrics (every 10
-- minutes)
INSERT INTO lake.job_defs (name, position, kind, schedule, command, description)
VALUES ('verify_audit', 7, 'procedure', '*/10 * * * *',
        'CALL lake.run_maintenance(''verify_audit'')',
        'check the audit log''s hash chain end to end; a broken chain fails the run (every 10 '
        'minutes)');
