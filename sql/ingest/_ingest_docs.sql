-- The lake's own ingest of parsed records into an open batch (lake.ingest, lake.ingest_raw,
-- lake.quarantine_release). The same shape as the two validation triggers, after one step of its
-- own: a dataset with a source format converts the source records, with their times
-- (lake_internal._convert_timed); then limits (lake_internal._limits), partitions on demand
-- (_partitions_for), the set-based pass test (_passes_sql), reasons for the suspects only
-- (_reasons), the quarantine writer (_quarantine, keeping each record's reference, e.g. "line
-- 17", and the record as sent), the archive writer (_archive_records) for valid records older
-- than the first month in the lake, store (an INSERT into the parent, whose validation trigger
-- checks the rows again and counts them), count (the quarantined and the archived here). It
-- returns each record's outcome (stored, archived or invalid, with its reasons); with
-- p_judge_only it stops there, before writing anything but the partitions the records need: how
-- the quarantine's release (lake_internal._release) learns what would become of records by the
-- very rules that then store them.
CREATE FUNCTION lake_internal._ingest_docs(
    p_dataset text,
    p_batch_id uuid,
    p_user_id text,
    p_refs text[],
    p_docs jsonb[],
    p_judge_only boolean DEFAULT false,
    OUT outcomes text[],
    OUT reasons jsonb[]
)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ds        lake.datasets;
    lim       lake_internal.limits;
    v_schema  lake.dataset_schemas;
    v_ts      timestamptz[];
    v_sus     integer[];
    v_reasons jsonb[];
    v_bad     integer[] := '{}';
    v_old     integer[] := '{}';
    v_sent    jsonb[] := p_docs;  -- as sent: the quarantine keeps these
BEGIN
    outcomes := '{}';
    reasons := '{}';
    IF coalesce(cardinality(p_docs), 0) = 0 THEN
        RETURN;
    END IF;
    SELECT * INTO ds FROM lake.datasets WHERE name = p_dataset;
    SELECT * INTO v_schema FROM lake.dataset_schemas
     WHERE dataset = ds.name AND version = ds.schema_version;
    -- A dataset with a source format: its records are made from the source records first.
    IF ds.source_format IS NULL THEN
        v_ts := lake.parse_times(ARRAY(SELECT x.d -> ds.time_field
                                         FROM unnest(p_docs) WITH ORDINALITY AS x(d, o)
                                        ORDER BY x.o),
                                 ds.time_format);
    ELSE
        SELECT c.docs, c.times INTO p_docs, v_ts
          FROM lake_internal._convert_timed(ds.source_format, p_docs, ds.time_field,
                                            ds.time_format) AS c;
    END IF;
    lim := lake_internal._partitions_for(lake_internal._limits(ds), v_ts);

    EXECUTE format($q$
        SELECT coalesce(array_agg(x.o ORDER BY x.o), '{}')
          FROM unnest($1::jsonb[], $2::timestamptz[]) WITH ORDINALITY AS x(doc, ts, o)
         WHERE NOT %s$q$, lake_internal._passes_sql(v_schema.predicate, 'x', 3))
    INTO v_sus
    USING p_docs, v_ts, lim;
    IF cardinality(v_sus) > 0 THEN
        v_reasons := lake_internal._reasons(lim, v_schema,
                                            array_fill(p_user_id, ARRAY[cardinality(v_sus)]),
                                            ARRAY(SELECT v_ts[i] FROM unnest(v_sus) i),
                                            ARRAY(SELECT p_docs[i] FROM unnest(v_sus) i));
        v_bad := ARRAY(SELECT v_sus[x.o] FROM unnest(v_reasons) WITH ORDINALITY AS x(r, o)
                        WHERE x.r <> '[]' ORDER BY x.o);
        -- Valid, but older than the first month in the lake: to the month's archive.
        v_old := ARRAY(SELECT v_sus[x.o] FROM unnest(v_reasons) WITH ORDINALITY AS x(r, o)
                        WHERE x.r = '[]' AND v_ts[v_sus[x.o]] < lim.archive_before
                        ORDER BY x.o);
    END IF;
    outcomes := array_fill('stored'::text, ARRAY[cardinality(p_docs)]);
    reasons := array_fill('[]'::jsonb, ARRAY[cardinality(p_docs)]);
    FOR i IN 1 .. coalesce(cardinality(v_reasons), 0) LOOP
        IF v_reasons[i] <> '[]' THEN
            outcomes[v_sus[i]] := 'invalid';
            reasons[v_sus[i]] := v_reasons[i];
        END IF;
    END LOOP;
    FOR i IN 1 .. cardinality(v_old) LOOP
        outcomes[v_old[i]] := 'archived';
    END LOOP;
    IF p_judge_only THEN
        RETURN;
    END IF;

    IF cardinality(v_bad) + cardinality(v_old) > 0 THEN
        PERFORM lake_internal._quarantine(
            ds.name, v_schema.version, p_batch_id,
            ARRAY(SELECT p_refs[i] FROM unnest(v_bad) i),
            array_fill(p_user_id, ARRAY[cardinality(v_bad)]),
            ARRAY(SELECT v_ts[i] FROM unnest(v_bad) i),
            ARRAY(SELECT v_sent[i] FROM unnest(v_bad) i),
            NULL,
            ARRAY(SELECT reasons[i] FROM unnest(v_bad) i));
        PERFORM lake_internal._archive_records(
            ds.name, array_fill(p_batch_id, ARRAY[cardinality(v_old)]), NULL,
            array_fill(p_user_id, ARRAY[cardinality(v_old)]),
            ARRAY(SELECT v_ts[i] FROM unnest(v_old) i),
            ARRAY(SELECT p_docs[i] FROM unnest(v_old) i));
    END IF;

    EXECUTE format($q$
        INSERT INTO user_data.%I (user_id, ts, doc, batch_id)
        SELECT $1, x.ts, x.doc, $2
          FROM unnest($3::jsonb[], $4::timestamptz[]) WITH ORDINALITY AS x(doc, ts, o)
         WHERE NOT x.o = ANY ($5)
         ORDER BY x.o$q$, ds.name)
    USING p_user_id, p_batch_id, p_docs, v_ts, v_bad || v_old;
    IF cardinality(v_bad) + cardinality(v_old) > 0 THEN
        PERFORM lake_internal._count_batch(ds.name, p_batch_id,
                                           cardinality(v_bad) + cardinality(v_old),
                                           cardinality(v_bad), 'sql', cardinality(v_old));
    END IF;
END
$$;
ALTER FUNCTION lake_internal._ingest_docs(text, uuid, text, text[], jsonb[], boolean) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._ingest_docs(text, uuid, text, text[], jsonb[], boolean) FROM PUBLIC;
