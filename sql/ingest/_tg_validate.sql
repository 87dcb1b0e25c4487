-- AFTER INSERT / AFTER UPDATE statement trigger of every user_data table: validates all rows of
-- the statement at once, in the shape of every ingest path (see also lake_internal._tg_inbox and
-- _ingest_docs): limits (lake_internal._limits; no partitions on demand here, the rows are stored
-- already and those outside the run of months sit in an overflow partition, suspects like any
-- other); one set-based scan of the transition table with the pass test (_passes_sql); reasons
-- for the suspects only (_reasons, PL/Python for the schema); the invalid ones leave the table
-- for the quarantine writer (_quarantine) -- or, for an UPDATE, the statement is refused, as a
-- change cannot be diverted; valid ones older than the first month in the lake (they sit in the
-- overflow partition <dataset>_p_before) leave it for the archive writer (_archive_records, with
-- their ids; an UPDATE that would move a row there is refused too); other suspects valid after
-- all stay; count. One function call per statement, not per row: this is what keeps COPY fast.
-- Runs as lake_owner so applications need no rights on the quarantine or the batch registry.
CREATE FUNCTION lake_internal._tg_validate()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off  -- compiling costs more than it saves on one batch
AS $$
DECLARE
    ds        lake.datasets;
    lim       lake_internal.limits;
    v_schema  lake.dataset_schemas;
    g         record;
    v_reasons jsonb[];
    v_bad     integer[];
    v_good    integer[];
    v_old     integer[];
    v_gone    integer[];
    v_n       bigint;
    v_arch    bigint;
    v_moved   bigint := 0;
BEGIN
    -- Rows lake.rollback restores were judged and counted when they came
    -- (lake_internal.restore_marks).
    IF TG_OP = 'INSERT' AND current_setting('lake.restoring', true) = TG_TABLE_NAME THEN
        IF EXISTS (SELECT FROM lake_internal.restore_marks AS m
                    WHERE m.xact_id = pg_current_xact_id() AND m.dataset = TG_TABLE_NAME) THEN
            PERFORM set_config('lake.diverted', TG_TABLE_NAME || ':0', true);
            RETURN NULL;
        END IF;
    END IF;
    SELECT * INTO ds FROM lake.datasets WHERE name = TG_TABLE_NAME;
    IF NOT FOUND OR TG_TABLE_SCHEMA <> 'user_data' THEN
        RAISE EXCEPTION 'lake_internal._tg_validate: %.% is not a lake dataset', TG_TABLE_SCHEMA, TG_TABLE_NAME;
    END IF;
    SELECT * INTO v_schema FROM lake.dataset_schemas
     WHERE dataset = ds.name AND version = ds.schema_version;
    lim := lake_internal._limits(ds);

    IF TG_OP = 'UPDATE' AND ds.pii_scan THEN
        -- The changed records are scanned afresh below.
        DELETE FROM lake.pii_findings AS f
         WHERE f.dataset = ds.name AND f.record_id IN (SELECT r.id FROM new_rows AS r);
    END IF;

    FOR g IN EXECUTE format($q$
        WITH s AS (
            -- OFFSET 0: not flattened, so ok is computed once a row, not once a FILTER
            SELECT r.batch_id, r.id, r.user_id, r.ts, r.doc,
                   r.user_id IS NOT NULL AND %s AS ok
              FROM %s AS r
            OFFSET 0)%s
        SELECT s.batch_id,
               count(*) AS received,
               array_agg(s.id) FILTER (WHERE NOT s.ok) AS ids,
               array_agg(s.user_id) FILTER (WHERE NOT s.ok) AS user_ids,
               array_agg(s.ts) FILTER (WHERE NOT s.ok) AS tss,
               array_agg(s.doc) FILTER (WHERE NOT s.ok) AS docs,
               sum(pg_column_size(s.doc)) AS bytes,
               array_agg(pg_column_size(s.doc)) FILTER (WHERE NOT s.ok) AS sizes,
               %s AS pii_found
          FROM s
         GROUP BY s.batch_id$q$, lake_internal._passes_sql(v_schema.predicate, 'r', 1),
         -- Records with pii_fields are judged as they were sent, not by their masks.
         CASE WHEN cardinality(ds.pii_fields) > 0
              THEN '(SELECT n.batch_id, n.id, n.user_id, n.ts, lake_internal._pii_open(n.doc, n.pii) AS doc'
                   ' FROM new_rows AS n)'
              ELSE 'new_rows' END,
         -- The personal identifiers in the rows that passed (lake.pii_findings), of those the
         -- pre-filter lets through; suspects that stay are scanned below.
         CASE WHEN ds.pii_scan THEN format($c$,
        p AS (SELECT lake_internal._pii_scan($2, array_agg(s.id), array_agg(s.user_id::text),
                                    array_agg(s.doc)) AS n
                FROM s WHERE s.ok AND %s)$c$, lake_internal._pii_prefilter_sql(
                                                ds.name, 'SELECT s.doc FROM s WHERE s.ok', 's.doc'))
              ELSE '' END,
         CASE WHEN ds.pii_scan THEN '(SELECT p.n FROM p)' ELSE 'NULL::integer' END)
    USING lim, ds.name
    LOOP
        v_n := 0;
        v_arch := 0;
        v_gone := '{}';
        IF g.ids IS NOT NULL THEN
            v_reasons := lake_internal._reasons(lim, v_schema, g.user_ids, g.tss, g.docs);
            v_bad := ARRAY(SELECT x.o FROM unnest(v_reasons) WITH ORDINALITY AS x(r, o)
                            WHERE x.r <> '[]' ORDER BY x.o);
            v_good := ARRAY(SELECT x.o FROM unnest(v_reasons) WITH ORDINALITY AS x(r, o)
                             WHERE x.r = '[]' AND g.tss[x.o] >= lim.archive_before ORDER BY x.o);
            v_old := ARRAY(SELECT x.o FROM unnest(v_reasons) WITH ORDINALITY AS x(r, o)
                            WHERE x.r = '[]' AND g.tss[x.o] < lim.archive_before ORDER BY x.o);
            v_gone := v_bad || v_old;
            IF ds.pii_scan AND cardinality(v_good) > 0 THEN
                -- Suspects that turned out valid stay: scan them like the rows that passed.
                PERFORM lake_internal._pii_scan(ds.name, ARRAY(SELECT g.ids[i] FROM unnest(v_good) AS i),
                                                ARRAY(SELECT g.user_ids[i] FROM unnest(v_good) AS i),
                                                ARRAY(SELECT g.docs[i] FROM unnest(v_good) AS i));
            END IF;
            IF cardinality(v_bad) > 0 AND TG_OP = 'UPDATE' THEN
                RAISE EXCEPTION USING ERRCODE = 'LK040',
                    MESSAGE = format('the update makes %s row(s) of dataset %s invalid',
                                     cardinality(v_bad), ds.name),
                    DETAIL = format('row %s: %s', g.ids[v_bad[1]],
                                    left(v_reasons[v_bad[1]]::text, 1000)),
                    HINT = 'Updated records must still satisfy the dataset''s schema and time window.';
            ELSIF cardinality(v_old) > 0 AND TG_OP = 'UPDATE' THEN
                RAISE EXCEPTION USING ERRCODE = 'LK040',
                    MESSAGE = format('the update moves %s row(s) of dataset %s before its first '
                                     'month in the lake (%s)', cardinality(v_old), ds.name,
                                     to_char(lim.archive_before AT TIME ZONE 'UTC', 'YYYY-MM')),
                    DETAIL = format('row %s: time %s', g.ids[v_old[1]], g.tss[v_old[1]]),
                    HINT = 'Months before it are archived; ingest such records anew instead.';
            ELSIF cardinality(v_gone) > 0 THEN
                -- By (user_id, ts, id) so each delete is one probe of the (user_id, ts) index of
                -- one month.
                EXECUTE format($q$
                    DELETE FROM user_data.%I AS t
                     USING unnest($1::bigint[], $2::text[], $3::timestamptz[]) AS b(id, user_id, ts)
                     WHERE t.user_id = b.user_id AND t.ts = b.ts AND t.id = b.id$q$, ds.name)
                USING ARRAY(SELECT g.ids[i] FROM unnest(v_gone) i WHERE g.user_ids[i] IS NOT NULL),
                      ARRAY(SELECT g.user_ids[i] FROM unnest(v_gone) i WHERE g.user_ids[i] IS NOT NULL),
                      ARRAY(SELECT g.tss[i] FROM unnest(v_gone) i WHERE g.user_ids[i] IS NOT NULL);
                EXECUTE format($q$
                    DELETE FROM user_data.%I AS t
                     USING unnest($1::bigint[], $2::timestamptz[]) AS b(id, ts)
                     WHERE t.user_id IS NULL AND t.ts = b.ts AND t.id = b.id$q$, ds.name)
                USING ARRAY(SELECT g.ids[i] FROM unnest(v_bad) i WHERE g.user_ids[i] IS NULL),
                      ARRAY(SELECT g.tss[i] FROM unnest(v_bad) i WHERE g.user_ids[i] IS NULL);
                v_n := lake_internal._quarantine(
                    ds.name, v_schema.version, g.batch_id,
                    ARRAY(SELECT 'row ' || g.ids[i] FROM unnest(v_bad) i),
                    ARRAY(SELECT g.user_ids[i] FROM unnest(v_bad) i),
                    ARRAY(SELECT g.tss[i] FROM unnest(v_bad) i),
                    ARRAY(SELECT g.docs[i] FROM unnest(v_bad) i),
                    NULL,
                    ARRAY(SELECT v_reasons[i] FROM unnest(v_bad) i));
                -- Valid, but older than the first month in the lake: to the month's archive,
                -- with the ids they were given.
                v_arch := lake_internal._archive_records(
                    ds.name, array_fill(g.batch_id, ARRAY[cardinality(v_old)]),
                    ARRAY(SELECT g.ids[i] FROM unnest(v_old) i),
                    ARRAY(SELECT g.user_ids[i] FROM unnest(v_old) i),
                    ARRAY(SELECT g.tss[i] FROM unnest(v_old) i),
                    ARRAY(SELECT g.docs[i] FROM unnest(v_old) i));
                v_moved := v_moved + v_n + v_arch;
            END IF;
        END IF;
        IF TG_OP = 'INSERT' THEN
            -- The bytes that stay, for the quotas: the statement's less those that left.
            PERFORM lake_internal._count_batch(
                ds.name, g.batch_id, g.received, v_n, 'insert', v_arch,
                g.bytes - coalesce((SELECT sum(g.sizes[i]) FROM unnest(v_gone) AS i), 0));
        END IF;
    END LOOP;
    -- For lake_internal._tg_capture, which fires next on this statement (no other code runs
    -- between): when nothing moved to the quarantine, every new row stayed and need not be looked
    -- up.
    PERFORM set_config('lake.diverted', TG_TABLE_NAME || ':' || v_moved, true);
    RETURN NULL;
END
$$;
ALTER FUNCTION lake_internal._tg_validate() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._tg_validate() FROM PUBLIC;
