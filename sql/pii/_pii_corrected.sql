-- A correction of a quarantined record as the lake takes it: a pii_field that the correction
-- leaves as the item shows it (its mask: lake.quarantine holds masks, lake.quarantine_pending
-- and the export show them) keeps the value that was sent, so a person who fixes another field
-- of an exported item does not replace their data with masks.
CREATE FUNCTION lake_internal._pii_corrected(p_corrected jsonb, p_doc jsonb, p_pii bytea)
RETURNS jsonb
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN p_pii IS NULL OR jsonb_typeof(p_corrected) IS DISTINCT FROM 'object'
                THEN p_corrected
                ELSE p_corrected || coalesce(
                         (SELECT jsonb_object_agg(c.key, c.value)
                            FROM jsonb_each(lake_internal._pii_open('{}', p_pii)) AS c
                           WHERE p_corrected -> c.key = p_doc -> c.key), '{}') END
$$;
ALTER FUNCTION lake_internal._pii_corrected(jsonb, jsonb, bytea) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._pii_corrected(jsonb, jsonb, bytea) FROM PUBLIC;
