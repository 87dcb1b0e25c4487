-- Job reindex: rebuilds the indexes of every dataset partition without blocking writes (Sundays)
INSERT INTO lake.job_defs (name, position, kind, schedule, command, description)
VALUES ('reindex', 110, 'statement', '0 1 * * 0', 'REINDEX SCHEMA CONCURRENTLY user_data_partitions',
        'rebuilds the indexes of every dataset partition without blocking writes (Sundays)');
