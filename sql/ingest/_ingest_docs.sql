-- The lake's own ingest of parsed records into an open batch: read each record's time, make
-- partitions on demand for times inside the window, quarantine what fails (keeping each record's
-- reference, e.g. "line 17"), and insert the rest, which the validation trigger checks again.
CREATE FUNCTION lake_internal._ingest_docs(
    p_dataset text,
    p_batch_id uuid,
    p_user_id text,
    p_refs text[],
    p_docs jsonb[]
)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ds        lake.datasets;
    v_schema  lake.dataset_schemas;
    v_ts      timestamptz[];
    v_lo      timestamptz;
    v_hi      timestamptz;
    v_sus     integer[];
    v_reasons jsonb[];
    v_bad     integer[] := '{}';
BEGIN
    IF coalesce(cardinality(p_docs), 0) = 0 THEN
        RETURN;
    END IF;
    SELECT * INTO ds FROM lake.datasets WHERE name = p_dataset;
    v_ts := lake.parse_times(ARRAY(SELECT x.d -> ds.time_field
                                     FROM unnest(p_docs) WITH ORDINALITY AS x(d, o) ORDER BY x.o),
                               ds.time_format);

    SELECT min(t), max(t) INTO v_lo, v_hi
      FROM unnest(v_ts) AS t
     WHERE t >= greatest(now() - ds.retention, ds.writable_from) AND t <= now() + ds.max_future;
    IF v_lo IS NOT NULL THEN  -- nested: SQL does not promise to evaluate AND left to right
        IF lake.ensure_partitions(ds.name, v_lo, v_hi) > 0 THEN
            SELECT * INTO ds FROM lake.datasets WHERE name = p_dataset;
        END IF;
    END IF;
    SELECT * INTO v_schema FROM lake.dataset_schemas
     WHERE dataset = ds.name AND version = ds.schema_version;

    -- Same set-based test as the trigger; reasons only for the suspects.
    EXECUTE format($q$
        SELECT coalesce(array_agg(x.o ORDER BY x.o), '{}')
          FROM unnest($1::jsonb[], $2::timestamptz[]) WITH ORDINALITY AS x(doc, ts, o)
         WHERE NOT %s$q$, lake_internal._passes_sql(v_schema.predicate, 'x', 3))
    INTO v_sus
    USING p_docs, v_ts, greatest(now() - ds.retention, ds.writable_from), now() + ds.max_future,
          ds.partitions_from, ds.partitions_to, 8 * ds.max_depth, ds.max_record_bytes,
          format('strict $.**{%s}', ds.max_depth + 1)::jsonpath;
    IF cardinality(v_sus) > 0 THEN
        v_reasons := lake_internal._reasons(ds, v_schema,
                                   array_fill(p_user_id, ARRAY[cardinality(v_sus)]),
                                   ARRAY(SELECT v_ts[i] FROM unnest(v_sus) i),
                                   ARRAY(SELECT p_docs[i] FROM unnest(v_sus) i));
        v_bad := ARRAY(SELECT v_sus[x.o] FROM unnest(v_reasons) WITH ORDINALITY AS x(r, o)
                        WHERE x.r <> '[]' ORDER BY x.o);
        INSERT INTO lake.quarantine
               (dataset, batch_id, record_ref, user_id, ts, doc, reasons, schema_version)
        SELECT ds.name, p_batch_id, p_refs[v_sus[x.o]], p_user_id, v_ts[v_sus[x.o]],
               p_docs[v_sus[x.o]], x.r, v_schema.version
          FROM unnest(v_reasons) WITH ORDINALITY AS x(r, o)
         WHERE x.r <> '[]';
        PERFORM lake_internal._count_batch(ds.name, p_batch_id, cardinality(v_bad), cardinality(v_bad), 'sql');
    END IF;

    EXECUTE format($q$
        INSERT INTO user_data.%I (user_id, ts, doc, batch_id)
        SELECT $1, x.ts, x.doc, $2
          FROM unnest($3::jsonb[], $4::timestamptz[]) WITH ORDINALITY AS x(doc, ts, o)
         WHERE NOT x.o = ANY ($5)
         ORDER BY x.o$q$, ds.name)
    USING p_user_id, p_batch_id, p_docs, v_ts, v_bad;
END
$$;
ALTER FUNCTION lake_internal._ingest_docs(text, uuid, text, text[], jsonb[]) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._ingest_docs(text, uuid, text, text[], jsonb[]) FROM PUBLIC;
