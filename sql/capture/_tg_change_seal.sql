-- Deferred constraint trigger of lake.change_xacts: at commit, seal the transaction's changes.
CREATE FUNCTION lake_internal._tg_change_seal()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM lake_internal._seal_changes();
    DELETE FROM lake.change_xacts WHERE xact_id = NEW.xact_id;
    RETURN NULL;
END
$$;
ALTER FUNCTION lake_internal._tg_change_seal() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._tg_change_seal() FROM PUBLIC;
