-- Decide a statement's suspects (the rows that failed the compiled predicate) with PL/Python and
-- the lake's checks, and act on the invalid ones:
--   INSERT  (lake_internal._tg_validate): they are in user_data.<dataset> already; move the
--           invalid ones to the quarantine. Suspects that turn out valid (the predicate is
--           allowed to be conservative) stay.
--   INBOX   (lake_internal._tg_inbox): they are in no table yet; quarantine the invalid ones and
--           store the valid ones in their monthly partitions, as lake_internal._tg_inbox does
--           with the rows that passed. p_ids is NULL: a quarantined row's record_ref is its p_refs entry (e.g.
--           "line 17") or else "row <id>" with an id of the dataset's sequence.
--   UPDATE  (lake_internal._tg_validate): refuse the statement (a change cannot be diverted).
-- Returns how many rows were quarantined.
CREATE FUNCTION lake_internal._divert(
    ds lake.datasets,
    p_schema lake.dataset_schemas,
    p_op text,
    p_batch_id uuid,
    p_ids bigint[],
    p_user_ids text[],
    p_tss timestamptz[],
    p_docs jsonb[],
    p_refs text[] DEFAULT NULL
)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_reasons jsonb[] := lake_internal._reasons(ds, p_schema, p_user_ids, p_tss, p_docs);
    v_bad     integer[];
    v_good    integer[];
    v_ids     bigint[] := p_ids;
    v_seq     regclass;
    v_month   timestamptz;
BEGIN
    v_bad := ARRAY(SELECT x.o FROM unnest(v_reasons) WITH ORDINALITY AS x(r, o)
                    WHERE x.r <> '[]' ORDER BY x.o);
    v_good := ARRAY(SELECT x.o FROM unnest(v_reasons) WITH ORDINALITY AS x(r, o)
                     WHERE x.r = '[]' ORDER BY x.o);
    IF p_op = 'INBOX' THEN
        v_seq := pg_get_serial_sequence(format('user_data.%I', ds.name), 'id')::regclass;
        -- Valid after all: each lies in a partition (the lake's checks said so).
        FOR v_month IN SELECT DISTINCT lake.month_start(p_tss[i]) FROM unnest(v_good) AS i LOOP
            EXECUTE format($q$
                WITH ins AS (
                    INSERT INTO user_data_partitions.%I
                           (id, user_id, ts, doc, batch_id, ingested_at)
                    SELECT nextval($1), x.u, x.t, x.d, $2, now()
                      FROM unnest($3::text[], $4::timestamptz[], $5::jsonb[]) WITH ORDINALITY
                           AS x(u, t, d, o)
                     WHERE lake.month_start(x.t) = $6
                     ORDER BY x.o
                    RETURNING id, user_id, doc)
                SELECT CASE WHEN $7 THEN lake_internal._pii_scan($8, array_agg(ins.id),
                                                        array_agg(ins.user_id::text),
                                                        array_agg(ins.doc)) END
                  FROM ins$q$,
                lake_internal._partition_name(ds.name, v_month))
            USING v_seq, p_batch_id,
                  ARRAY(SELECT p_user_ids[i] FROM unnest(v_good) AS i),
                  ARRAY(SELECT p_tss[i] FROM unnest(v_good) AS i),
                  ARRAY(SELECT p_docs[i] FROM unnest(v_good) AS i),
                  v_month, ds.pii_scan, ds.name;
        END LOOP;
        IF cardinality(v_bad) = 0 THEN
            RETURN 0;
        END IF;
        v_ids := ARRAY(SELECT CASE WHEN x.r <> '[]' AND p_refs[x.o] IS NULL
                                   THEN nextval(v_seq) END
                         FROM unnest(v_reasons) WITH ORDINALITY AS x(r, o) ORDER BY x.o);
    ELSE
        IF ds.pii_scan AND cardinality(v_good) > 0 THEN
            -- Suspects that turned out valid stay: scan them like the rows that passed.
            PERFORM lake_internal._pii_scan(ds.name, ARRAY(SELECT p_ids[i] FROM unnest(v_good) AS i),
                                   ARRAY(SELECT p_user_ids[i] FROM unnest(v_good) AS i),
                                   ARRAY(SELECT p_docs[i] FROM unnest(v_good) AS i));
        END IF;
        IF cardinality(v_bad) = 0 THEN
            RETURN 0;
        END IF;
    END IF;
    IF p_op = 'UPDATE' THEN
        RAISE EXCEPTION USING ERRCODE = 'LK040',
            MESSAGE = format('the update makes %s row(s) of dataset %s invalid',
                             cardinality(v_bad), ds.name),
            DETAIL = format('row %s: %s', p_ids[v_bad[1]], left(v_reasons[v_bad[1]]::text, 1000)),
            HINT = 'Updated records must still satisfy the dataset''s schema and time window.';
    ELSIF p_op = 'INSERT' THEN
        -- By (user_id, ts, id) so each delete is one probe of the (user_id, ts) index of one
        -- month.
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
    END IF;

    INSERT INTO lake.quarantine
           (dataset, batch_id, record_ref, user_id, ts, doc, reasons, schema_version)
    SELECT ds.name, p_batch_id, coalesce(p_refs[i], 'row ' || v_ids[i]), p_user_ids[i], p_tss[i],
           p_docs[i], v_reasons[i], p_schema.version
      FROM unnest(v_bad) AS i;
    RETURN cardinality(v_bad);
END
$$;
ALTER FUNCTION lake_internal._divert(lake.datasets, lake.dataset_schemas, text, uuid, bigint[], text[],
                            timestamptz[], jsonb[], text[]) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._divert(lake.datasets, lake.dataset_schemas, text, uuid, bigint[],
                                    text[], timestamptz[], jsonb[], text[]) FROM PUBLIC;
