-- The COPY inbox of a dataset with a source format (lake_internal._tg_inbox hands its statement
-- here): the inbox's ts was read by the client from the source record, not from the record the
-- lake makes of it, so each batch's rows go the way of lake.ingest (lake_internal._ingest_docs:
-- convert, then limits, pass test, reasons, quarantine of the records as sent, store, count).
-- Then the inbox is emptied of this transaction's rows, as _tg_inbox does.
CREATE FUNCTION lake_internal._ingest_sources(
    p_dataset text,
    p_user_id text,
    p_batch_ids uuid[],
    p_refs text[],
    p_docs jsonb[]
)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    g         record;
    v_seqscan text := current_setting('enable_seqscan');
BEGIN
    FOR g IN
        SELECT x.b,
               array_agg(coalesce(x.r, 'row ' || x.o) ORDER BY x.o) AS refs,
               array_agg(x.d ORDER BY x.o) AS docs
          FROM unnest(p_batch_ids, p_refs, p_docs) WITH ORDINALITY AS x(b, r, d, o)
         GROUP BY x.b
    LOOP
        PERFORM lake_internal._ingest_docs(p_dataset, g.b, p_user_id, g.refs, g.docs);
    END LOOP;
    PERFORM set_config('enable_seqscan', 'off', true);
    EXECUTE format('DELETE FROM inbox.%I WHERE xact_id = pg_current_xact_id()', p_dataset);
    PERFORM set_config('enable_seqscan', v_seqscan, true);
END
$$;
ALTER FUNCTION lake_internal._ingest_sources(text, text, uuid[], text[], jsonb[])
    OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._ingest_sources(text, text, uuid[], text[], jsonb[])
    FROM PUBLIC;
