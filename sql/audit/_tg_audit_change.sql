-- AFTER UPDATE / DELETE / TRUNCATE statement trigger of every user_data table: one audit entry
-- per 1000 changed rows, with the rows before (and after) the change as JSON arrays, so no entry
-- grows without bound. Changes the lake's own triggers make inside an INSERT (moving a
-- statement's invalid rows to the quarantine, pg_trigger_depth() > 1) are part of that
-- statement's batch, which is audited as such.
CREATE FUNCTION lake_internal._tg_audit_change()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_table text := format('%I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME);
    c       record;
BEGIN
    IF pg_trigger_depth() > 1 THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM lake_internal._audit('data.truncate', v_table);
    ELSIF TG_OP = 'UPDATE' THEN
        FOR c IN
            SELECT count(*) AS n, jsonb_agg(o.doc ORDER BY o.id) AS before,
                   jsonb_agg(to_jsonb(w) ORDER BY o.id) AS after
              FROM (SELECT r.id, to_jsonb(r) AS doc,
                           (row_number() OVER (ORDER BY r.id) - 1) / 1000 AS part
                      FROM old_rows AS r) AS o
              JOIN new_rows AS w ON w.id = o.id
             GROUP BY o.part ORDER BY o.part
        LOOP
            PERFORM lake_internal._audit('data.update', v_table, jsonb_build_object('rows', c.n),
                                c.before, c.after);
        END LOOP;
    ELSE
        FOR c IN
            SELECT count(*) AS n, jsonb_agg(o.doc ORDER BY o.id) AS before
              FROM (SELECT r.id, to_jsonb(r) AS doc,
                           (row_number() OVER (ORDER BY r.id) - 1) / 1000 AS part
                      FROM old_rows AS r) AS o
             GROUP BY o.part ORDER BY o.part
        LOOP
            PERFORM lake_internal._audit('data.delete', v_table, jsonb_build_object('rows', c.n),
                                c.before, NULL);
        END LOOP;
    END IF;
    RETURN NULL;
END
$$;
ALTER FUNCTION lake_internal._tg_audit_change() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._tg_audit_change() FROM PUBLIC;
