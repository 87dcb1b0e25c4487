-- Ingest a JSON array of records into a dataset as one batch and return the batch row
-- (received = accepted + archived + quarantined: records older than the first month in the
-- lake go to their month's archive). Records belong to the session's lake user, or to
-- for_user when an administrator loads data for someone. batch_id makes a retry safe: the
-- same id again returns the first result and changes nothing.
--   SELECT * FROM lake.ingest('location_history', '[{"ts": "2026-11-26T08:00:00Z", ...}]');
CREATE FUNCTION lake.ingest(
    dataset text,
    records jsonb,
    batch_id uuid DEFAULT NULL,
    for_user text DEFAULT NULL,
    origin text DEFAULT NULL
)
RETURNS lake.batches
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    -- The parameters' names are the documented API; the body uses these aliases.
    p_dataset ALIAS FOR dataset;
    p_records ALIAS FOR records;
    p_batch_id ALIAS FOR batch_id;
    p_for_user ALIAS FOR for_user;
    p_origin ALIAS FOR origin;
    v_user  text;
    v_open  record;
    v_n     integer;
    v_batch lake.batches;
BEGIN
    IF jsonb_typeof(p_records) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION USING ERRCODE = 'LK006',
            MESSAGE = format('records must be a JSON array, not %s',
                             coalesce(jsonb_typeof(p_records), 'NULL')),
            HINT = 'Wrap a single record in [ ].';
    END IF;
    v_user := lake_internal._batch_user(p_for_user);
    v_open := lake_internal._open_batch(p_dataset, coalesce(p_batch_id, gen_random_uuid()), v_user, 'sql',
                               encode(sha256(convert_to(p_records::text, 'UTF8')), 'hex'),
                               p_origin);
    IF NOT v_open.is_new THEN
        RAISE NOTICE 'batch % was ingested before; nothing was changed', (v_open.batch).id;
        RETURN v_open.batch;
    END IF;
    v_n := jsonb_array_length(p_records);
    PERFORM lake_internal._ingest_docs(
        p_dataset, (v_open.batch).id, v_user,
        ARRAY(SELECT 'records[' || (x.o - 1) || ']'
                FROM generate_series(1, v_n) AS x(o) ORDER BY x.o),
        ARRAY(SELECT x.d FROM jsonb_array_elements(p_records) WITH ORDINALITY AS x(d, o)
               ORDER BY x.o));
    SELECT * INTO v_batch FROM lake.batches WHERE id = (v_open.batch).id;
    IF v_batch.received <> v_n THEN
        RAISE EXCEPTION USING ERRCODE = 'LK031',
            MESSAGE = format('batch %s counted %s records of %s', v_batch.id, v_batch.received, v_n);
    END IF;
    RETURN v_batch;
END
$$;
ALTER FUNCTION lake.ingest(text, jsonb, uuid, text, text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.ingest(text, jsonb, uuid, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.ingest(text, jsonb, uuid, text, text) TO lake_admin, lake_write;

COMMENT ON FUNCTION lake.ingest(text, jsonb, uuid, text, text) IS
    'Ingest a JSON array of records as one batch; returns the lake.batches row. The same batch_id '
    'again changes nothing.';
