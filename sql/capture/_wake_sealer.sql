-- Called by the writers' capture triggers: wake the bridge to seal and forward with NOTIFY
-- lake_seal, but only when it said it is idle (lake_internal.sealer_wakeup.armed). A plain read,
-- no lock: under load the flag is down and commits send no NOTIFY (whose database-wide lock at
-- commit would serialise them). A writer that read the flag just before the bridge raised it is
-- found by the bridge's look after arming.
CREATE FUNCTION lake_internal._wake_sealer()
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF (SELECT armed FROM lake_internal.sealer_wakeup) THEN
        PERFORM pg_notify('lake_seal', '');
    END IF;
END
$$;
ALTER FUNCTION lake_internal._wake_sealer() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._wake_sealer() FROM PUBLIC;
