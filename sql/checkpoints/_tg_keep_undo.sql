-- AFTER UPDATE / AFTER DELETE (transition table old_rows) and BEFORE TRUNCATE statement trigger of
-- every user_data table: keeps the rows as they were in lake_internal.row_undo, so lake.rollback
-- can bring them back. One INSERT per statement. A version written by the current transaction
-- itself is skipped: no checkpoint can see it without also seeing its change. TRUNCATE copies the
-- whole table first (rare, and the one change a rollback could not undo otherwise); a TRUNCATE of a
-- single partition does not reach this trigger.
CREATE FUNCTION lake_internal._tg_keep_undo()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        EXECUTE format($q$
            INSERT INTO lake_internal.row_undo
                   (dataset, op, id, user_id, ts, doc, batch_id, ingested_at, pii, row_xact)
            SELECT %L, 'TRUNCATE', t.id, t.user_id, t.ts, t.doc, t.batch_id, t.ingested_at,
                   t.pii, t.xact_id
              FROM %I.%I AS t
             WHERE t.xact_id <> pg_current_xact_id()$q$,
            TG_TABLE_NAME, TG_TABLE_SCHEMA, TG_TABLE_NAME);
    ELSE
        INSERT INTO lake_internal.row_undo
               (dataset, op, id, user_id, ts, doc, batch_id, ingested_at, pii, row_xact)
        SELECT TG_TABLE_NAME, TG_OP, o.id, o.user_id, o.ts, o.doc, o.batch_id, o.ingested_at,
               o.pii, o.xact_id
          FROM old_rows AS o
         WHERE o.xact_id <> pg_current_xact_id();
    END IF;
    RETURN NULL;
END
$$;
ALTER FUNCTION lake_internal._tg_keep_undo() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._tg_keep_undo() FROM PUBLIC;
