-- Owns every lake object. It cannot log in: the only way to act as it is through the lake's own
-- SECURITY DEFINER functions, so no application role can alter a table or bypass a rule.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'lake_owner') THEN
        CREATE ROLE lake_owner NOLOGIN NOINHERIT;
    END IF;
END
$$;
