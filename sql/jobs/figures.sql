-- Job figures: a sample of quality scores and storage bytes every 15 minutes (lake.figure_history)
INSERT INTO lake.job_defs (name, position, kind, schedule, command, description)
VALUES ('figures', 85, 'procedure', '*/15 * * * *', 'CALL lake.run_maintenance(''figures'')',
        'a sample of quality scores and storage bytes into lake.figure_history');
