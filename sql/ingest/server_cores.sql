-- How many sessions `lake ingest` (and Lake.ingest) load with unless told: one per server core,
-- since validation is CPU work in the server, one backend per session. A function rather than a
-- setting: it follows the hardware the server runs on, wherever the client is. It runs as its
-- owner, who may call the lake's PL/Python (lake_internal._server_cores), which applications may
-- not.
CREATE FUNCTION lake.server_cores()
RETURNS integer
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT lake_internal._server_cores()
$$;
ALTER FUNCTION lake.server_cores() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.server_cores() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.server_cores() TO lake_admin, lake_read, lake_write;

COMMENT ON FUNCTION lake.server_cores() IS
    'CPU cores the server may use (CPU affinity, capped by a cgroup v2 quota): the default '
    'number of sessions of a bulk load.';
