-- Job backups: a full backup every backup_full_every (7 days), an incremental one every
-- backup_incr_every (1 day), backup_retention_full full backups kept (hourly check)
INSERT INTO lake.job_defs (name, position, kind, schedule, command, description)
VALUES ('backups', 95, 'procedure', '45 * * * *', 'CALL lake.run_maintenance(''backups'')',
        'a pgBackRest backup when due: full every backup_full_every (7 days), incremental every '
        'backup_incr_every (1 day); keeps backup_retention_full full backups (hourly check)');
