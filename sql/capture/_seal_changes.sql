-- Move the committed changes waiting in lake_internal.change_pending into lake.data_changes:
-- called only by lake.seal(), which runs one sealer at a time. One statement, so one snapshot: the
-- batch is every change committed before it looked (running transactions' changes are invisible
-- and wait for the next seal; a rolled-back transaction's never commit). Batches follow one another
-- in commit order, and within a batch changes are numbered in seq order: a transaction that waited
-- for another's row lock captured its change of that row after the other's. Ids continue
-- lake_internal.change_head without a gap and appear when the sealer commits, all at once, so a
-- reader never sees id n + 1 before n. Returns the last id given (NULL when there was nothing).
CREATE FUNCTION lake_internal._seal_changes()
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_head bigint;
    v_last bigint;
    v_lsn  pg_lsn;
BEGIN
    IF NOT EXISTS (SELECT FROM lake_internal.change_pending) THEN
        RETURN NULL;  -- an idle poll writes nothing (no transaction id, no WAL)
    END IF;
    SELECT last_id INTO STRICT v_head FROM lake_internal.change_head FOR UPDATE;
    v_lsn := pg_current_wal_insert_lsn();
    WITH moved AS (
        DELETE FROM lake_internal.change_pending RETURNING *),
    ins AS (
        INSERT INTO lake.data_changes
               (id, xact_id, lsn, dataset, user_id, record_id, op, before, after, source, ts_ms)
        SELECT v_head + row_number() OVER (ORDER BY m.seq), m.xact_id, v_lsn, m.dataset,
               m.user_id, m.record_id, m.op, m.before, m.after,
               m.source || jsonb_build_object('lsn', v_lsn::text),
               (extract(epoch FROM clock_timestamp()) * 1000)::bigint
          FROM moved AS m
        RETURNING id)
    SELECT max(id) INTO v_last FROM ins;
    IF v_last IS NOT NULL THEN
        UPDATE lake_internal.change_head SET last_id = v_last;
    END IF;
    RETURN v_last;
END
$$;
ALTER FUNCTION lake_internal._seal_changes() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._seal_changes() FROM PUBLIC;
