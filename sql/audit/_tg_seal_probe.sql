-- Probe trigger of lake.seal_probe (at_commit). It runs at once only when a client made the lake's
-- commit-time triggers IMMEDIATE (SET CONSTRAINTS): it notes that for
-- lake_internal._require_commit(). Deferred, it runs later in the commit, where the note is
-- harmless. Either way it deletes the probe row.
CREATE FUNCTION lake_internal._tg_seal_probe()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER  -- deferred, it runs as the committing session's role
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM set_config('lake.seal_early', 'on', true);
    DELETE FROM lake.seal_probe WHERE xact_id = NEW.xact_id;
    RETURN NULL;
END
$$;
ALTER FUNCTION lake_internal._tg_seal_probe() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._tg_seal_probe() FROM PUBLIC;
