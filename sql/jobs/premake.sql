-- Job premake: partitions for this month and the premake window of every dataset (hourly)
INSERT INTO lake.job_defs (name, position, kind, schedule, command, description)
VALUES ('premake', 10, 'procedure', '0 * * * *', 'CALL lake.run_maintenance(''premake'')',
        'partitions for this month and the premake window of every dataset (hourly)');
