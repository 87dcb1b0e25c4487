-- A caught exception of one step of lake.apply_retention, as an entry of its report.
CREATE FUNCTION lake_internal._retention_error(p_step text, p_sqlstate text, p_message text)
RETURNS jsonb
LANGUAGE sql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_build_object('step', p_step, 'sqlstate', p_sqlstate, 'error', p_message)
$$;
ALTER FUNCTION lake_internal._retention_error(text, text, text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._retention_error(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake_internal._retention_error(text, text, text) TO lake_admin;
