-- The COPY inbox of a dataset with a source format (lake_internal._tg_inbox hands its statement
-- here): the rows hold source records, and their ts was read by the client from those, not from
-- the records the lake makes of them. So the statement's records are converted in one call
-- (lake_internal._convert), their times read (lake.parse_times), and the converted rows inserted
-- into the inbox again, where _tg_inbox takes them on its usual path (validation, the partitions,
-- the quarantine, the counts; lake.converting tells it they are converted). The quarantine then
-- gets back what was sent: each of these rows it holds has its source record in doc again,
-- matched by batch and reference (references are made unique here when the client gave none).
CREATE FUNCTION lake_internal._ingest_sources(
    p_dataset text,
    p_batch_ids uuid[],
    p_refs text[],
    p_docs jsonb[]
)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ds     lake.datasets;
    v_refs text[];
    v_docs jsonb[];
    v_batches uuid[];
BEGIN
    SELECT * INTO ds FROM lake.datasets WHERE name = p_dataset;
    v_refs := ARRAY(SELECT coalesce(x.r, 'records[' || (x.o - 1) || ']')
                      FROM unnest(p_refs) WITH ORDINALITY AS x(r, o) ORDER BY x.o);
    v_docs := lake_internal._convert(ds.source_format, p_docs);
    PERFORM set_config('lake.converting', ds.name, true);
    EXECUTE format($q$
        INSERT INTO inbox.%I (ts, doc, batch_id, ref)
        SELECT x.t, x.d, x.b, x.r
          FROM unnest($1::timestamptz[], $2::jsonb[], $3::uuid[], $4::text[])
               WITH ORDINALITY AS x(t, d, b, r, o)
         ORDER BY x.o$q$, ds.name)
    USING lake.parse_times(ARRAY(SELECT x.d -> ds.time_field
                                   FROM unnest(v_docs) WITH ORDINALITY AS x(d, o) ORDER BY x.o),
                           ds.time_format),
          v_docs, p_batch_ids, v_refs;
    PERFORM set_config('lake.converting', '', true);

    v_batches := ARRAY(SELECT DISTINCT b FROM unnest(p_batch_ids) AS b);
    IF EXISTS (SELECT FROM lake.quarantine AS q
                WHERE q.batch_id = ANY (v_batches) AND q.received_at = now()) THEN
        UPDATE lake.quarantine AS q
           SET doc = s.d
          FROM unnest(p_batch_ids, v_refs, p_docs) AS s(b, r, d)
         WHERE q.batch_id = ANY (v_batches)
           AND q.dataset = ds.name AND q.status = 'pending' AND q.received_at = now()
           AND q.batch_id = s.b AND q.record_ref = s.r;
    END IF;
END
$$;
ALTER FUNCTION lake_internal._ingest_sources(text, uuid[], text[], jsonb[]) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._ingest_sources(text, uuid[], text[], jsonb[]) FROM PUBLIC;
