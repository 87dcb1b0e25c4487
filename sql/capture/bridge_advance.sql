-- The bridge name's cursor, created at 0 when new, moved forward to last_id when given (never
-- back: a bridge restarted from an older state cannot rewind another's progress). Returns it.
-- batch_seconds: how long the bridge took over the batch it forwarded (read, sent to Redis),
-- recorded as a bridge_batch duration (data_processing_duration_seconds).
CREATE FUNCTION lake.bridge_advance(name text, last_id bigint DEFAULT NULL,
                                    batch_seconds float8 DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    -- The parameters' names are the documented API; the body uses these aliases.
    p_name ALIAS FOR name;
    p_last_id ALIAS FOR last_id;
    p_batch_seconds ALIAS FOR batch_seconds;
    v_last bigint;
BEGIN
    -- PL/pgSQL: the plan is kept for the session (a SQL function with SET plans every call).
    INSERT INTO lake.bridge_cursors AS c (name, last_id)
    VALUES (p_name, coalesce(p_last_id, 0))
    ON CONFLICT (name) DO UPDATE
       SET last_id = greatest(c.last_id, coalesce(excluded.last_id, c.last_id)),
           updated_at = CASE WHEN p_last_id IS NULL THEN c.updated_at ELSE now() END
    RETURNING c.last_id INTO v_last;
    IF p_batch_seconds IS NOT NULL THEN
        PERFORM lake_internal._record_duration(
            'bridge_batch', clock_timestamp() - make_interval(secs => greatest(p_batch_seconds, 0)));
    END IF;
    RETURN v_last;
END
$$;
ALTER FUNCTION lake.bridge_advance(text, bigint, float8) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.bridge_advance(text, bigint, float8) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.bridge_advance(text, bigint, float8) TO lake_admin;

COMMENT ON FUNCTION lake.bridge_advance(text, bigint, float8) IS
    'Create a bridge''s cursor (at 0) or move it forward to last_id; never back; batch_seconds: '
    'the forwarded batch''s duration, recorded. Returns it.';
