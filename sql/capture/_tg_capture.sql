-- AFTER INSERT / UPDATE / DELETE / TRUNCATE statement triggers (write_changes_*) of every user_data
-- table: the statement's row changes, set-based, into lake_internal.change_pending, numbered into
-- lake.data_changes after commit by lake.seal(). Named to fire after the validation triggers, so
-- an INSERT records only the rows that stayed (not those moved to the quarantine), and the
-- quarantine's own deletes (inside those triggers) are not changes anyone made. A rollback's
-- deletes and re-inserts are recorded like any others.
CREATE FUNCTION lake_internal._tg_capture()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_n   bigint;
    v_src jsonb := lake_internal._change_source(TG_TABLE_SCHEMA, TG_TABLE_NAME,
                                       (extract(epoch FROM clock_timestamp()) * 1000)::bigint,
                                       'row');
BEGIN
    IF pg_trigger_depth() > 1 THEN
        RETURN NULL;  -- the lake's own housekeeping inside another trigger
    END IF;
    CASE TG_OP
    WHEN 'INSERT' THEN
        IF current_setting('lake.diverted', true) = TG_TABLE_NAME || ':0' THEN
            -- lake_internal._tg_validate moved none of them: skip the lookup (planning it over
            -- every partition is most of a single-row INSERT's cost).
            INSERT INTO lake_internal.change_pending (dataset, user_id, record_id, op, after, source)
            SELECT TG_TABLE_NAME, n.user_id, n.id, 'c', to_jsonb(n) - 'xact_id', v_src
              FROM new_rows AS n
             ORDER BY n.id;
        ELSE
            EXECUTE format($q$
                INSERT INTO lake_internal.change_pending (dataset, user_id, record_id, op, after, source)
                SELECT $1, n.user_id, n.id, 'c', to_jsonb(n) - 'xact_id', $2
                  FROM new_rows AS n
                 WHERE EXISTS (SELECT FROM user_data.%I AS t
                                WHERE t.user_id = n.user_id AND t.ts = n.ts AND t.id = n.id)
                 ORDER BY n.id$q$, TG_TABLE_NAME)
            USING TG_TABLE_NAME, v_src;
        END IF;
    WHEN 'UPDATE' THEN
        INSERT INTO lake_internal.change_pending (dataset, user_id, record_id, op, before, after, source)
        SELECT TG_TABLE_NAME, n.user_id, n.id, 'u', to_jsonb(o) - 'xact_id',
               to_jsonb(n) - 'xact_id', v_src
          FROM new_rows AS n JOIN old_rows AS o ON o.id = n.id
         ORDER BY n.id;
    WHEN 'DELETE' THEN
        INSERT INTO lake_internal.change_pending (dataset, user_id, record_id, op, before, source)
        SELECT TG_TABLE_NAME, o.user_id, o.id, 'd', to_jsonb(o) - 'xact_id', v_src
          FROM old_rows AS o
         ORDER BY o.id;
    WHEN 'TRUNCATE' THEN
        INSERT INTO lake_internal.change_pending (dataset, op, source)
        VALUES (TG_TABLE_NAME, 't', v_src || '{"kind": "truncate"}');
    END CASE;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    IF v_n > 0 THEN
        PERFORM lake_internal._wake_sealer();
    END IF;
    RETURN NULL;
END
$$;
ALTER FUNCTION lake_internal._tg_capture() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._tg_capture() FROM PUBLIC;
