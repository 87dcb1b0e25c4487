-- Job commit_lock: end sessions idle in a transaction that holds the lake's commit lock while
-- writers wait (every minute)
INSERT INTO lake.job_defs (name, position, kind, schedule, command, description)
VALUES ('commit_lock', 120, 'statement', '* * * * *',
        'SELECT count(*) FROM lake.release_commit_lock()',
        'end sessions idle in a transaction that holds the lake''s commit lock while writers wait (every minute)');
