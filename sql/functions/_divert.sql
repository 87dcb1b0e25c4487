-- Move the invalid rows among a statement's suspects from user_data.<dataset> to the quarantine
-- (INSERT), or refuse the statement (UPDATE: a change cannot be diverted). Suspects that turn out
-- valid (the compiled predicate is allowed to be conservative) stay. Returns how many moved.
CREATE FUNCTION lake._divert(
    ds lake.datasets,
    p_schema lake.dataset_schemas,
    p_op text,
    p_batch_id uuid,
    p_ids bigint[],
    p_user_ids text[],
    p_tss timestamptz[],
    p_docs jsonb[]
)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_reasons jsonb[] := lake._reasons(ds, p_schema, p_user_ids, p_tss, p_docs);
    v_bad     integer[];
BEGIN
    v_bad := ARRAY(SELECT x.o FROM unnest(v_reasons) WITH ORDINALITY AS x(r, o)
                    WHERE x.r <> '[]' ORDER BY x.o);
    IF cardinality(v_bad) = 0 THEN
        RETURN 0;
    END IF;
    IF p_op = 'UPDATE' THEN
        RAISE EXCEPTION USING ERRCODE = 'LK040',
            MESSAGE = format('the update makes %s row(s) of dataset %s invalid',
                             cardinality(v_bad), ds.name),
            DETAIL = format('row %s: %s', p_ids[v_bad[1]], left(v_reasons[v_bad[1]]::text, 1000)),
            HINT = 'Updated records must still satisfy the dataset''s schema and time window.';
    END IF;

    -- By (user_id, ts, id) so each delete is one probe of the (user_id, ts) index of one month.
    EXECUTE format($q$
        DELETE FROM user_data.%I AS t
         USING unnest($1::bigint[], $2::text[], $3::timestamptz[]) AS b(id, user_id, ts)
         WHERE t.user_id = b.user_id AND t.ts = b.ts AND t.id = b.id$q$, ds.name)
    USING ARRAY(SELECT p_ids[i] FROM unnest(v_bad) i WHERE p_user_ids[i] IS NOT NULL),
          ARRAY(SELECT p_user_ids[i] FROM unnest(v_bad) i WHERE p_user_ids[i] IS NOT NULL),
          ARRAY(SELECT p_tss[i] FROM unnest(v_bad) i WHERE p_user_ids[i] IS NOT NULL);
    EXECUTE format($q$
        DELETE FROM user_data.%I AS t
         USING unnest($1::bigint[], $2::timestamptz[]) AS b(id, ts)
         WHERE t.user_id IS NULL AND t.ts = b.ts AND t.id = b.id$q$, ds.name)
    USING ARRAY(SELECT p_ids[i] FROM unnest(v_bad) i WHERE p_user_ids[i] IS NULL),
          ARRAY(SELECT p_tss[i] FROM unnest(v_bad) i WHERE p_user_ids[i] IS NULL);

    INSERT INTO lake.quarantine
           (dataset, batch_id, record_ref, user_id, ts, doc, reasons, schema_version)
    SELECT ds.name, p_batch_id, 'row ' || p_ids[i], p_user_ids[i], p_tss[i], p_docs[i],
           v_reasons[i], p_schema.version
      FROM unnest(v_bad) AS i;
    RETURN cardinality(v_bad);
END
$$;
ALTER FUNCTION lake._divert(lake.datasets, lake.dataset_schemas, text, uuid, bigint[], text[],
                            timestamptz[], jsonb[]) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake._divert(lake.datasets, lake.dataset_schemas, text, uuid, bigint[],
                                    text[], timestamptz[], jsonb[]) FROM PUBLIC;
