-- Job analyze: planner statistics for every dataset and lake table
INSERT INTO lake.job_defs (name, position, kind, schedule, command, description)
VALUES ('analyze', 90, 'procedure', '0 4 * * *', 'CALL lake.run_maintenance(''analyze'')',
        'planner statistics for every dataset and lake table');
