-- A measured write and read per storage tier of the database's side: PostgreSQL (the probe row
-- written, then read back; the commit's WAL flush follows the function and is not in it; the
-- hot, warm and cold partitions share the one storage, so one figure stands for all) and the
-- archive folder (a file written, fsynced, read; absent while there is no archive folder).
-- Seconds. `lake serve` exposes it as storage_latency_seconds, with Redis measured there.
CREATE FUNCTION lake.storage_latency()
RETURNS TABLE (tier text, operation text, seconds float8)
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t0 timestamptz;
    v_write float8;
    v_read float8;
    a record;
BEGIN
    t0 := clock_timestamp();
    INSERT INTO lake_internal.latency_probe VALUES (1, t0)
    ON CONFLICT (id) DO UPDATE SET written_at = excluded.written_at;
    v_write := extract(epoch FROM clock_timestamp() - t0);
    t0 := clock_timestamp();
    PERFORM written_at FROM lake_internal.latency_probe WHERE id = 1;
    v_read := extract(epoch FROM clock_timestamp() - t0);
    RETURN QUERY VALUES ('postgres', 'write', v_write), ('postgres', 'read', v_read);
    a := lake_internal._archive_probe(
        lake_internal._archive_root(lake_internal._setting('archive_dir')));
    IF a.write_s IS NOT NULL THEN
        RETURN QUERY VALUES ('archive', 'write', a.write_s), ('archive', 'read', a.read_s);
    END IF;
END
$$;
ALTER FUNCTION lake.storage_latency() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.storage_latency() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.storage_latency() TO lake_admin;

COMMENT ON FUNCTION lake.storage_latency() IS
    'A measured write and read per storage tier (postgres, archive), in seconds.';
