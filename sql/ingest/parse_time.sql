-- Read a record's time from its JSON value without ever raising: NULL when the value is missing
-- or not a valid time (lake.parse_times says how, for many values at once).
CREATE FUNCTION lake.parse_time(value jsonb, format text DEFAULT 'rfc3339')
RETURNS timestamptz
LANGUAGE sql
STABLE
PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT (lake.parse_times(ARRAY[parse_time.value], parse_time.format))[1]
$$;
ALTER FUNCTION lake.parse_time(jsonb, text) OWNER TO lake_owner;
GRANT EXECUTE ON FUNCTION lake.parse_time(jsonb, text) TO PUBLIC;

COMMENT ON FUNCTION lake.parse_time(jsonb, text) IS
    'A record''s time from its JSON value in the given format, or NULL; never raises.';
