-- Job pii_keys: PII key rotation (every pii_key_rotation, 90 days by default), re-encryption of
-- older seals in batches, retirement of unused keys (hourly)
INSERT INTO lake.job_defs (name, position, kind, schedule, command, description)
VALUES ('pii_keys', 35, 'procedure', '25 * * * *', 'CALL lake.run_maintenance(''pii_keys'')',
        'rotate the PII key every pii_key_rotation (90 days), re-encrypt a batch of older seals, '
        'retire keys nothing uses (hourly)');
