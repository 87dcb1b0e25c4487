-- The COPY inbox of a dataset with a source format (lake_internal._tg_inbox hands its statement
-- here): the rows hold source records, and their ts was read by the client from those, not from
-- the records the lake makes of them. So the statement's records are converted in one call
-- (lake_internal._convert), their times read (lake.parse_times), and the converted rows inserted
-- into the inbox again, each with its source record in sent, where _tg_inbox takes them on its
-- usual path (validation, the partitions, the quarantine, the counts; lake.converting tells it
-- they are converted). The quarantine's one writer (lake_internal._quarantine) gets sent for an
-- invalid row, so it keeps what the person sent, as on every other path.
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
    v_docs jsonb[];
BEGIN
    SELECT * INTO ds FROM lake.datasets WHERE name = p_dataset;
    v_docs := lake_internal._convert(ds.source_format, p_docs);
    PERFORM set_config('lake.converting', ds.name, true);
    EXECUTE format($q$
        INSERT INTO inbox.%I (ts, doc, batch_id, ref, sent)
        SELECT x.t, x.d, x.b, x.r, x.s
          FROM unnest($1::timestamptz[], $2::jsonb[], $3::uuid[], $4::text[], $5::jsonb[])
               WITH ORDINALITY AS x(t, d, b, r, s, o)
         ORDER BY x.o$q$, ds.name)
    USING lake.parse_times(ARRAY(SELECT x.d -> ds.time_field
                                   FROM unnest(v_docs) WITH ORDINALITY AS x(d, o) ORDER BY x.o),
                           ds.time_format),
          v_docs, p_batch_ids, p_refs, p_docs;
    PERFORM set_config('lake.converting', '', true);
END
$$;
ALTER FUNCTION lake_internal._ingest_sources(text, uuid[], text[], jsonb[]) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._ingest_sources(text, uuid[], text[], jsonb[]) FROM PUBLIC;
