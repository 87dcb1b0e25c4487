-- Records of an open client batch that the client could not route itself: invalid UTF-8, not
-- JSON that PostgreSQL accepts (\u0000, numbers beyond numeric's range, nesting beyond the
-- parser's stack), too large, or without a readable time. Each is parsed on its own; what fails
-- is quarantined with the exact bytes received (through the quarantine's one writer,
-- lake_internal._quarantine; the size limit is the dataset's, lake_internal._limits), the rest
-- goes through lake_internal._ingest_docs.
CREATE FUNCTION lake.ingest_raw(dataset text, batch_id uuid, refs text[], raw bytea[])
RETURNS void
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    -- The parameters' names are the documented API; the body uses these aliases.
    p_dataset ALIAS FOR dataset;
    p_batch_id ALIAS FOR batch_id;
    p_refs ALIAS FOR refs;
    p_raw ALIAS FOR raw;
    ds        lake.datasets;
    lim       lake_internal.limits;
    v_batch   lake.batches;
    v_refs    text[] := '{}';
    v_docs    jsonb[] := '{}';
    v_bad     integer[] := '{}';
    v_why     jsonb[] := '{}';
    v_text    text;
    v_state   text;
    v_msg     text;
    v_detail  text;
BEGIN
    SELECT * INTO v_batch FROM lake.batches WHERE id = p_batch_id;
    IF NOT FOUND OR v_batch.xact_id <> pg_current_xact_id() OR v_batch.dataset <> p_dataset THEN
        RAISE EXCEPTION USING ERRCODE = 'LK030',
            MESSAGE = format('batch %s is not open in this transaction', p_batch_id),
            HINT = 'Call lake.begin_batch first, in the same transaction.';
    END IF;
    SELECT * INTO ds FROM lake.datasets WHERE name = p_dataset;
    lim := lake_internal._limits(ds);
    IF cardinality(p_refs) IS DISTINCT FROM cardinality(p_raw) THEN
        RAISE EXCEPTION 'ingest_raw: % references for % records', cardinality(p_refs),
            cardinality(p_raw);
    END IF;

    FOR i IN 1 .. coalesce(cardinality(p_raw), 0) LOOP
        IF octet_length(p_raw[i]) > lim.max_record_bytes THEN
            v_state := 'too_large';
            v_msg := format('the record has %s bytes, more than the limit of %s',
                            octet_length(p_raw[i]), lim.max_record_bytes);
        ELSE
            BEGIN
                v_state := NULL;
                v_text := convert_from(p_raw[i], 'UTF8');
                v_docs := v_docs || v_text::jsonb;
                v_refs := v_refs || p_refs[i];
            EXCEPTION WHEN data_exception OR program_limit_exceeded THEN
                GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_msg = MESSAGE_TEXT,
                                        v_detail = PG_EXCEPTION_DETAIL;
                v_state := CASE
                    WHEN v_state = '22021' THEN 'encoding_invalid'
                    WHEN v_state = '22003' THEN 'number_out_of_range'
                    WHEN v_state LIKE '54%' THEN 'too_deep'
                    ELSE 'json_invalid' END;
                v_msg := left(v_msg || coalesce(': ' || nullif(v_detail, ''), ''), 300);
            END;
        END IF;
        IF v_state IS NOT NULL THEN
            v_bad := v_bad || i;
            v_why := array_append(v_why, jsonb_build_array(jsonb_build_object(
                'path', '$', 'rule', v_state, 'message', v_msg)));
        END IF;
    END LOOP;
    IF cardinality(v_bad) > 0 THEN
        PERFORM lake_internal._quarantine(
            ds.name, ds.schema_version, p_batch_id,
            ARRAY(SELECT p_refs[i] FROM unnest(v_bad) i),
            array_fill(v_batch.user_id, ARRAY[cardinality(v_bad)]),
            NULL, NULL,
            ARRAY(SELECT p_raw[i] FROM unnest(v_bad) i),
            v_why);
        PERFORM lake_internal._count_batch(ds.name, p_batch_id, cardinality(v_bad),
                                           cardinality(v_bad), 'client');
    END IF;
    PERFORM lake_internal._ingest_docs(ds.name, p_batch_id, v_batch.user_id, v_refs, v_docs);
END
$$;
ALTER FUNCTION lake.ingest_raw(text, uuid, text[], bytea[]) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.ingest_raw(text, uuid, text[], bytea[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.ingest_raw(text, uuid, text[], bytea[]) TO lake_admin, lake_write;

COMMENT ON FUNCTION lake.ingest_raw(text, uuid, text[], bytea[]) IS
    'Records of an open client batch that the client could not send as jsonb: each parsed on its '
    'own, what fails quarantined with the exact bytes.';
