-- Drop the checkpoints older than their keep_for (24 hours unless the checkpoint said otherwise) at
-- now (default: now; tests pass later times), and the undo rows (lake_internal.row_undo) that no
-- checkpoint needs any more. An undo row is kept while a snapshot to come may still not see its
-- change (undo_xact not older than every running transaction), or while a remaining checkpoint saw
-- the row version but not its change. Takes SHARE ROW EXCLUSIVE on lake.checkpoints, so it waits
-- for checkpoints being taken and rollbacks in flight and none starts meanwhile. Safe to call at
-- any time and repeatedly; the lifecycle jobs call it hourly. Returns what it removed.
-- Administrators (and the lake's jobs).
CREATE FUNCTION lake.purge_checkpoints(now timestamptz DEFAULT now())
RETURNS TABLE (checkpoints_purged bigint, undo_rows_purged bigint)
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    -- The parameters' names are the documented API; the body uses these aliases.
    p_now ALIAS FOR now;
    v_horizon xid8;
BEGIN
    IF p_now IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'LK073', MESSAGE = 'p_now must not be NULL';
    END IF;
    LOCK TABLE lake.checkpoints IN SHARE ROW EXCLUSIVE MODE;
    DELETE FROM lake.checkpoints AS c WHERE c.created_at + c.keep_for < p_now;
    GET DIAGNOSTICS checkpoints_purged = ROW_COUNT;

    v_horizon := pg_snapshot_xmin(pg_current_snapshot());
    DELETE FROM lake_internal.row_undo AS u
     WHERE (u.undo_xact < v_horizon
            AND NOT EXISTS (
                SELECT FROM lake.checkpoints AS c
                 WHERE c.dataset = u.dataset
                   AND u.row_xact <> c.xact_id AND pg_visible_in_snapshot(u.row_xact, c.snapshot)
                   AND NOT (u.undo_xact <> c.xact_id
                            AND pg_visible_in_snapshot(u.undo_xact, c.snapshot))))
        -- Committed (this statement sees it) yet not before this snapshot's xmax: from another
        -- cluster's history, restored from a dump; no checkpoint of this cluster can use it.
        OR (u.undo_xact >= pg_snapshot_xmax(pg_current_snapshot())
            AND u.undo_xact IS DISTINCT FROM pg_current_xact_id_if_assigned());
    GET DIAGNOSTICS undo_rows_purged = ROW_COUNT;

    IF checkpoints_purged > 0 OR undo_rows_purged > 0 THEN
        PERFORM lake_internal._audit('checkpoint.purge', 'lake.checkpoints',
                            jsonb_build_object('now', p_now, 'checkpoints', checkpoints_purged,
                                               'undo_rows', undo_rows_purged));
    END IF;
    RETURN NEXT;
END
$$;
ALTER FUNCTION lake.purge_checkpoints(timestamptz) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.purge_checkpoints(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.purge_checkpoints(timestamptz) TO lake_admin;

COMMENT ON FUNCTION lake.purge_checkpoints(timestamptz) IS
    'Drop checkpoints past their keep_for and the undo rows no checkpoint needs.';
