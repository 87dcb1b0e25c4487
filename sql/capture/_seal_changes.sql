-- Move this transaction's pending changes into lake.data_changes, numbered in order, and wake the
-- readers. Called at commit (deferred triggers). Takes the lock of the audit chain's head
-- (lake_internal.audit_head), held until the transaction ends: the next committing transaction
-- numbers its changes only after this one is visible, so ids follow commit order and a reader never
-- sees id n + 1 before n. One lock for both logs, so they cannot deadlock on each other.
CREATE FUNCTION lake_internal._seal_changes()
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_n    integer;
    v_last bigint;
    v_lsn  pg_lsn;
BEGIN
    IF NOT EXISTS (SELECT FROM lake_internal.change_pending WHERE xact_id = pg_current_xact_id()) THEN
        RETURN 0;
    END IF;
    PERFORM lake_internal._require_commit();  -- not early: the lock is held until the transaction ends
    PERFORM FROM lake_internal.audit_head FOR UPDATE;
    v_lsn := pg_current_wal_insert_lsn();
    WITH moved AS (
        DELETE FROM lake_internal.change_pending WHERE xact_id = pg_current_xact_id() RETURNING *),
    ins AS (
        INSERT INTO lake.data_changes
               (xact_id, lsn, dataset, user_id, record_id, op, before, after, source, ts_ms)
        SELECT m.xact_id, v_lsn, m.dataset, m.user_id, m.record_id, m.op, m.before, m.after,
               m.source || jsonb_build_object('lsn', v_lsn::text),
               (extract(epoch FROM clock_timestamp()) * 1000)::bigint
          FROM (SELECT * FROM moved ORDER BY seq) AS m
        RETURNING id)
    SELECT count(*), max(id) INTO v_n, v_last FROM ins;
    PERFORM pg_notify('lake_changes', v_last::text);
    RETURN v_n;
END
$$;
ALTER FUNCTION lake_internal._seal_changes() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._seal_changes() FROM PUBLIC;
