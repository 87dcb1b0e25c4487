-- Job quarantine_review: quarantined items past their 24 h review deadline become expired, counted
-- and audited; none is deleted (hourly)
INSERT INTO lake.job_defs (name, position, kind, schedule, command, description)
VALUES ('quarantine_review', 30, 'procedure', '15 * * * *', 'CALL lake.run_maintenance(''quarantine_review'')',
        'quarantined items past their 24 h review deadline become expired, counted and audited; none is deleted (hourly)');
