-- A statement's source records converted into the dataset's records by its source format
-- (plpython/lake_formats), in order, in one call, with each record's time (NULL: none valid),
-- as lake.parse_times reads it from the record's p_time_field: the first step of
-- lake_internal._ingest_docs and of a COPY inbox of source records (_tg_inbox), so every ingest
-- path converts the same way. A format is one SQL expression over the source record d, run here
-- over all records at once, or Python (lake_internal._convert_py). A source record that is not a
-- JSON object, or that a converter cannot read, becomes {"source_error": ...}, which the
-- dataset's schema refuses; the caller quarantines the record as sent.
--
-- An SQL format may compute a record's time anyway (Takeout's timestampMs is an instant before
-- it is text): its time_sql gives it (t in its convert_sql), and for a dataset whose time field
-- is the format's, in RFC 3339, that time is taken as it is (the format guarantees it is what
-- parse_times would read, tests/test_formats.py checks it); parse_times reads only the others.
-- Reading them back from the text cost ≈ 3 µs a record. With p_time_field NULL, no times.
CREATE FUNCTION lake_internal._convert_timed(
    p_format text,
    p_docs jsonb[],
    p_time_field text,
    p_time_format text,
    OUT docs jsonb[],
    OUT times timestamptz[]
)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    f record;
BEGIN
    SELECT s.convert_sql, s.time_field, s.time_sql INTO STRICT f
      FROM lake_internal._source_formats() AS s WHERE s.name = p_format;
    IF f.convert_sql IS NULL THEN
        docs := lake_internal._convert_py(p_format, p_docs);
    ELSE
        -- OFFSET 0: the time is computed once, for the record's conversion and for the caller
        EXECUTE format($q$
            SELECT coalesce(array_agg(CASE WHEN x.d IS NULL THEN NULL
                                           WHEN jsonb_typeof(x.d) <> 'object'
                                           THEN '{"source_error": "a source record must be a JSON object"}'
                                           ELSE (%s) END ORDER BY x.o), '{}'),
                   coalesce(array_agg(x.t ORDER BY x.o), '{}')
              FROM (SELECT u.d, u.o, CASE WHEN jsonb_typeof(u.d) = 'object' THEN (%s) END AS t
                      FROM unnest($1) WITH ORDINALITY AS u(d, o)
                    OFFSET 0) AS x$q$,
            f.convert_sql, coalesce(f.time_sql, 'NULL::timestamptz'))
        INTO docs, times
        USING p_docs;
    END IF;
    IF p_time_field IS NULL THEN
        times := NULL;
    ELSIF f.time_sql IS NULL OR f.time_field IS DISTINCT FROM p_time_field
          OR p_time_format IS DISTINCT FROM 'rfc3339' THEN
        times := lake.parse_times(ARRAY(SELECT x.d -> p_time_field
                                          FROM unnest(docs) WITH ORDINALITY AS x(d, o)
                                         ORDER BY x.o),
                                  p_time_format);
    ELSE
        -- the format's times, and parse_times for the records it gave none
        times := ARRAY(
            SELECT coalesce(u.t, u.r)
              FROM unnest(times,
                          lake.parse_times(ARRAY(SELECT CASE WHEN v.t IS NULL
                                                             THEN v.d -> p_time_field END
                                                   FROM unnest(docs, times)
                                                        WITH ORDINALITY AS v(d, t, o)
                                                  ORDER BY v.o),
                                           p_time_format)) WITH ORDINALITY AS u(t, r, o)
             ORDER BY u.o);
    END IF;
END
$$;
ALTER FUNCTION lake_internal._convert_timed(text, jsonb[], text, text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._convert_timed(text, jsonb[], text, text) FROM PUBLIC;
