-- The histogram's upper bounds, in seconds: from a small batch (5 ms) to an hour-long retention
-- run. One home for them: the rollup counts by them and `lake serve` exposes them.
CREATE FUNCTION lake_internal._duration_buckets()
RETURNS float8[]
LANGUAGE sql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT '{0.005,0.01,0.025,0.05,0.1,0.25,0.5,1,2.5,5,10,30,60,300,900,3600}'::float8[]
$$;
ALTER FUNCTION lake_internal._duration_buckets() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._duration_buckets() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake_internal._duration_buckets() TO lake_admin;
