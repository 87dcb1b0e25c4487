-- Job checkpoints: a recovery point of every dataset, and the purge of those older than 24 hours
INSERT INTO lake.job_defs (name, position, kind, schedule, command, description)
VALUES ('checkpoints', 20, 'procedure', '5 * * * *', 'CALL lake.run_maintenance(''checkpoints'')',
        'a recovery point of every dataset for lake.rollback, and the purge of those past 24 hours (hourly)');
