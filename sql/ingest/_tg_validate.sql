-- AFTER INSERT / AFTER UPDATE statement trigger of every user_data table: validates all rows of
-- the statement at once. The compiled JSON Schema predicate and the lake's cheap checks run as one
-- set-based scan of the transition table; only rows failing it (the suspects) reach PL/Python for
-- reasons, and the invalid ones are moved to lake.quarantine. One function call per statement,
-- not per row: this is what keeps COPY fast. Runs as lake_owner so applications need no rights
-- on the quarantine or the batch registry.
CREATE FUNCTION lake_internal._tg_validate()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off  -- compiling costs more than it saves on one batch
AS $$
DECLARE
    ds        lake.datasets;
    v_schema  lake.dataset_schemas;
    g         record;
    v_bad     bigint;
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
               %s AS pii_found
          FROM s
         GROUP BY s.batch_id$q$, lake_internal._passes_sql(v_schema.predicate, 'r', 1),
         -- Records with pii_fields are judged as they were sent, not by their masks.
         CASE WHEN cardinality(ds.pii_fields) > 0
              THEN '(SELECT n.batch_id, n.id, n.user_id, n.ts, lake_internal._pii_open(n.doc, n.pii) AS doc'
                   ' FROM new_rows AS n)'
              ELSE 'new_rows' END,
         -- The personal identifiers in the rows that passed (lake.pii_findings); suspects that
         -- stay are scanned by lake_internal._divert.
         CASE WHEN ds.pii_scan THEN $c$,
        p AS (SELECT lake_internal._pii_scan($8, array_agg(s.id), array_agg(s.user_id::text),
                                    array_agg(s.doc)) AS n
                FROM s WHERE s.ok)$c$ ELSE '' END,
         CASE WHEN ds.pii_scan THEN '(SELECT p.n FROM p)' ELSE 'NULL::integer' END)
    USING greatest(now() - ds.retention, ds.writable_from), now() + ds.max_future, ds.partitions_from, ds.partitions_to,
          8 * ds.max_depth, ds.max_record_bytes,
          format('strict $.**{%s}', ds.max_depth + 1)::jsonpath, ds.name
    LOOP
        v_bad := 0;
        IF g.ids IS NOT NULL THEN
            v_bad := lake_internal._divert(ds, v_schema, TG_OP, g.batch_id, g.ids, g.user_ids, g.tss, g.docs);
            v_moved := v_moved + v_bad;
        END IF;
        IF TG_OP = 'INSERT' THEN
            PERFORM lake_internal._count_batch(ds.name, g.batch_id, g.received, v_bad, 'insert');
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
