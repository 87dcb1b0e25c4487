-- Job vacuum: VACUUM of the whole database, skipping tables locked at the time
INSERT INTO lake.job_defs (name, position, kind, schedule, command, description)
VALUES ('vacuum', 100, 'statement', '0 3 * * *', 'VACUUM (SKIP_LOCKED)',
        'VACUUM of the whole database, skipping tables locked at the time');
