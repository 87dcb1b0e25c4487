-- The one hook by which a function records how long its work took: from p_started to now (the
-- clock, not the transaction's start). Called last in the operation's transaction, so a
-- rolled-back operation records nothing. Granted to lake_admin for lake.apply_retention, which
-- commits and so runs as its caller.
CREATE FUNCTION lake_internal._record_duration(p_operation text, p_started timestamptz,
                                               p_status text DEFAULT 'ok')
RETURNS void
LANGUAGE sql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO lake_internal.op_durations (operation, status, seconds)
    VALUES (p_operation, p_status,
            greatest(extract(epoch FROM clock_timestamp() - p_started)::float8, 0))
$$;
ALTER FUNCTION lake_internal._record_duration(text, timestamptz, text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._record_duration(text, timestamptz, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake_internal._record_duration(text, timestamptz, text) TO lake_admin;
