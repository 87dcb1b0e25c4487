-- Job server_certs: renew the servers' TLS certificates (PostgreSQL, Redis, HTTP, gRPC) when a
-- third of their 30 days is left, and reload PostgreSQL's (daily)
INSERT INTO lake.job_defs (name, position, kind, schedule, command, description)
VALUES ('server_certs', 37, 'procedure', '41 3 * * *',
        'CALL lake.run_maintenance(''server_certs'')',
        'renew the servers'' TLS certificates (LAKE_HOME/tls) with a third of their 30 days '
        'left, and reload PostgreSQL''s (daily)');
