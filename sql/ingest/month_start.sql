-- First instant of the UTC month holding ts: the lake's partitions are whole UTC months.
CREATE FUNCTION lake.month_start(ts timestamptz)
RETURNS timestamptz
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT date_trunc('month', month_start.ts, 'UTC')
$$;
ALTER FUNCTION lake.month_start(timestamptz) OWNER TO lake_owner;
GRANT EXECUTE ON FUNCTION lake.month_start(timestamptz) TO PUBLIC;

COMMENT ON FUNCTION lake.month_start(timestamptz) IS
    'The first instant of the UTC month holding ts.';
