-- Job retention: tiers, then archive, verify and drop the months past retention, and purge old
-- archives, for every dataset (daily; lake.apply_retention, which commits per partition)
INSERT INTO lake.job_defs (name, position, kind, schedule, command, description)
VALUES ('retention', 40, 'procedure', '10 2 * * *', 'CALL lake.run_maintenance(''retention'')',
        'tiers, archive + verify + drop of months past retention, purge of old archives (daily)');
