-- Group role for auditors: reads the audit log and verifies its hash chain; no access to user
-- data. Grant it to a login role.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'lake_auditor') THEN
        CREATE ROLE lake_auditor NOLOGIN;
    END IF;
END
$$;
