-- A statement's source records converted into the dataset's records by its source format
-- (plpython/lake_formats), in order, in one call: the first step of lake_internal._ingest_docs
-- and of a COPY inbox of source records (_tg_inbox), so every ingest path converts the
-- same way. A format is one SQL expression over the source record d, run here over all records
-- at once, or Python (lake_internal._convert_py). A source record that is not a JSON object, or
-- that a converter cannot read, becomes {"source_error": ...}, which the dataset's schema
-- refuses; the caller quarantines the record as sent.
CREATE FUNCTION lake_internal._convert(p_format text, p_docs jsonb[])
RETURNS jsonb[]
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_sql text;
    v_out jsonb[];
BEGIN
    SELECT f.convert_sql INTO STRICT v_sql
      FROM lake_internal._source_formats() AS f WHERE f.name = p_format;
    IF v_sql IS NULL THEN
        RETURN lake_internal._convert_py(p_format, p_docs);
    END IF;
    EXECUTE format($q$
        SELECT coalesce(array_agg(CASE WHEN x.d IS NULL THEN NULL
                                       WHEN jsonb_typeof(x.d) <> 'object'
                                       THEN '{"source_error": "a source record must be a JSON object"}'
                                       ELSE (%s) END ORDER BY x.o), '{}')
          FROM unnest($1) WITH ORDINALITY AS x(d, o)$q$, v_sql)
    INTO v_out
    USING p_docs;
    RETURN v_out;
END
$$;
ALTER FUNCTION lake_internal._convert(text, jsonb[]) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._convert(text, jsonb[]) FROM PUBLIC;
