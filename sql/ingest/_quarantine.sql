-- The quarantine's one writer: every ingest path (lake_internal._tg_validate, _tg_inbox,
-- _ingest_docs and lake.ingest_raw) hands its rejected records here, set-based, one array per
-- column, so what a quarantine entry holds is decided in one place. Arrays left NULL give NULL
-- columns (unnest pads the shorter ones): a record that never parsed has raw and no doc, ts or
-- user. Returns how many records were quarantined.
CREATE FUNCTION lake_internal._quarantine(
    p_dataset text,
    p_schema_version integer,
    p_batch_id uuid,
    p_refs text[],
    p_user_ids text[],
    p_tss timestamptz[],
    p_docs jsonb[],
    p_raws bytea[],
    p_reasons jsonb[]
)
RETURNS bigint
LANGUAGE sql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH ins AS (
        INSERT INTO lake.quarantine
               (dataset, batch_id, record_ref, user_id, ts, doc, raw, reasons, schema_version)
        SELECT p_dataset, p_batch_id, x.ref, x.user_id, x.ts, x.doc, x.raw, x.reasons,
               p_schema_version
          FROM unnest(p_refs, p_user_ids, p_tss, p_docs, p_raws, p_reasons) WITH ORDINALITY
               AS x(ref, user_id, ts, doc, raw, reasons, o)
         ORDER BY x.o
        RETURNING 1)
    SELECT count(*) FROM ins
$$;
ALTER FUNCTION lake_internal._quarantine(text, integer, uuid, text[], text[], timestamptz[],
                                         jsonb[], bytea[], jsonb[]) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._quarantine(text, integer, uuid, text[], text[],
                                                 timestamptz[], jsonb[], bytea[], jsonb[])
    FROM PUBLIC;
