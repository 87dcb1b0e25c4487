-- The bridge's wake-up flag (lake_internal.sealer_wakeup): armed (true) when it has run out of work
-- and waits on LISTEN lake_seal, so the next writer sends a NOTIFY; cleared (false) when it is
-- woken and busy, so writers send none. Writes only when the flag changes. The flag remembers the
-- session that raised it: lake.seal() lowers it when that session is gone.
CREATE FUNCTION lake.arm_sealer(armed boolean)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE lake_internal.sealer_wakeup AS w
       SET armed = arm_sealer.armed,
           pid = CASE WHEN arm_sealer.armed THEN pg_backend_pid() END
     WHERE w.armed IS DISTINCT FROM arm_sealer.armed
        OR (arm_sealer.armed AND w.pid IS DISTINCT FROM pg_backend_pid());
END
$$;
ALTER FUNCTION lake.arm_sealer(boolean) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.arm_sealer(boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.arm_sealer(boolean) TO lake_admin;

COMMENT ON FUNCTION lake.arm_sealer(boolean) IS
    'The bridge''s wake-up flag: true when idle (writers then NOTIFY lake_seal), false when busy.';
