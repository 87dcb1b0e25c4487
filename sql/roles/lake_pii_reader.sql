-- Group role for those who may see personal identifiers in clear: lake.pii_reveal() decrypts a
-- dataset's pii_fields for them (every call audited). Everyone else sees them masked. Grant it
-- beside lake_app (for the session's own user's records) or lake_admin (any user's).
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'lake_pii_reader') THEN
        CREATE ROLE lake_pii_reader NOLOGIN;
    END IF;
END
$$;
