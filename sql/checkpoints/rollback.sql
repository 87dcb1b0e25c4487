-- Return a dataset to its state at one of its last 5 checkpoints (lake.rollback_targets):
-- every row as it was then, with its id, owner, time, document, batch, ingest time and sealed
-- personal fields, undoing the INSERTs, UPDATEs, DELETEs and TRUNCATEs committed since. How:
--   1. Writers of the dataset wait until this transaction ends (readers do not); those in
--      flight finish first, so what follows sees everything committed.
--   2. A checkpoint of its own ('before rollback to #N'): rolling back to it undoes this.
--   3. DELETE every row version the checkpoint does not see (its xact_id is not visible in the
--      checkpoint's snapshot, or is the checkpoint's own transaction).
--   4. INSERT back, with their ids, the before-images in lake_internal.row_undo that the
--      checkpoint saw (row_xact visible) and whose change it did not (undo_xact not visible):
--      each row of the checkpoint's state that is gone or changed since has exactly one such
--      image. Validation, batch counts and PII sealing skip these rows
--      (lake_internal.restore_marks): they are restored, not received. Their
--      personal-identifier findings are recorded again.
-- Both steps are ordinary changes: the DELETE fires the audit and undo triggers like any other,
-- the restored rows are audited as data.restore (after-images, one entry per 1000 rows), and the
-- whole is audited as dataset.rollback. Rows the retention window has since left behind (before
-- the dataset's first partition) are not brought back; they are counted as rows_not_restored.
-- The quarantine and lake.batches are history and stay as they are. Needs READ COMMITTED (a
-- transaction snapshot older than the lock could miss committed rows), in a transaction that
-- has not changed the dataset itself. Administrators only.
CREATE FUNCTION lake.rollback(dataset text, checkpoint bigint)
RETURNS TABLE (
    before_checkpoint bigint,
    rows_deleted bigint,
    rows_restored bigint,
    rows_not_restored bigint
)
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    -- The parameters' names are the documented API; the body uses these aliases.
    p_dataset ALIAS FOR dataset;
    p_checkpoint ALIAS FOR checkpoint;
    ds      lake.datasets;
    c       lake.checkpoints;
    b       lake.checkpoints;
    v_audit bigint;
    v_scan  bigint;
    v_me    xid8;
    v_mine  boolean;
    v_alien boolean;
    v_started timestamptz := clock_timestamp();  -- for lake_internal._record_duration
BEGIN
    SELECT * INTO ds FROM lake.datasets AS d WHERE d.name = p_dataset;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'LK003',
            MESSAGE = format('no dataset %L', p_dataset),
            HINT = 'SELECT name FROM lake.datasets lists the datasets.';
    END IF;
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION USING ERRCODE = 'LK072',
            MESSAGE = 'lake.rollback needs the READ COMMITTED isolation level',
            HINT = 'Call it on its own or in a READ COMMITTED transaction.';
    END IF;

    EXECUTE format('LOCK TABLE user_data.%I IN EXCLUSIVE MODE', ds.name);
    LOCK TABLE lake.checkpoints IN ROW EXCLUSIVE MODE;  -- no purge of undo rows meanwhile
    SELECT * INTO c FROM lake.checkpoints AS k WHERE k.id = p_checkpoint AND k.dataset = ds.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'LK070',
            MESSAGE = format('dataset %s has no checkpoint %s', ds.name, p_checkpoint),
            HINT = format('SELECT id, label, created_at FROM lake.rollback_targets(%L) lists '
                          'the checkpoints a rollback may target.', ds.name);
    END IF;
    IF NOT EXISTS (SELECT FROM lake.rollback_targets(ds.name) AS t WHERE t.id = c.id) THEN
        RAISE EXCEPTION USING ERRCODE = 'LK071',
            MESSAGE = format('checkpoint %s of dataset %s is not one of its last 5', c.id, ds.name),
            HINT = 'A rollback may target only these checkpoints: ' ||
                   (SELECT string_agg(format('#%s (%s, %s)', t.id, t.label,
                                             to_char(t.created_at AT TIME ZONE 'UTC',
                                                     'YYYY-MM-DD HH24:MI:SS"Z"')), ', '
                                     ORDER BY t.id DESC)
                      FROM lake.rollback_targets(ds.name) AS t) || '.';
    END IF;
    IF c.system_id <> (SELECT s.system_identifier FROM pg_control_system() AS s) THEN
        RAISE EXCEPTION USING ERRCODE = 'LK075',
            MESSAGE = format('checkpoint %s was taken on another database cluster', c.id),
            HINT = 'Transaction ids do not carry over a dump restored elsewhere or an upgrade: '
                   'take a new checkpoint.';
    END IF;
    -- Changes of this very transaction would be undone but come after its own checkpoint, so
    -- undoing the rollback could not bring them back: refuse.
    v_me := pg_current_xact_id_if_assigned();
    IF v_me IS NOT NULL THEN
        EXECUTE format($q$
            SELECT EXISTS (SELECT FROM user_data.%I AS t WHERE t.xact_id = $1)
                OR EXISTS (SELECT FROM lake_internal.row_undo AS u
                            WHERE u.dataset = $2 AND u.undo_xact = $1)$q$, ds.name)
        INTO v_mine USING v_me, ds.name;
        IF v_mine THEN
            RAISE EXCEPTION USING ERRCODE = 'LK074',
                MESSAGE = format('this transaction has changed dataset %s itself', ds.name),
                HINT = 'Commit those changes first, or call lake.rollback in a transaction '
                       'of its own.';
        END IF;
    END IF;
    b := lake.checkpoint(ds.name, format('before rollback to #%s', c.id));

    -- No row can have been written after this transaction began writing (writers wait): a
    -- later transaction id comes from another cluster's history (a dump restored here).
    EXECUTE format($q$
        WITH d AS (
            DELETE FROM user_data.%I AS t
             WHERE NOT (t.xact_id <> $1 AND pg_visible_in_snapshot(t.xact_id, $2))
            RETURNING t.xact_id)
        SELECT count(*), coalesce(bool_or(d.xact_id > pg_current_xact_id()), false)
          FROM d$q$, ds.name)
    INTO rows_deleted, v_alien
    USING c.xact_id, c.snapshot;
    IF v_alien THEN
        RAISE EXCEPTION USING ERRCODE = 'LK075',
            MESSAGE = format('rows of dataset %s carry transaction ids of another database '
                             'cluster', ds.name),
            HINT = 'They were restored from a dump: rewrite them once (e.g. UPDATE user_data.'
                   || ds.name || ' SET doc = doc, as a superuser) and take a new checkpoint.';
    END IF;

    INSERT INTO lake_internal.restore_marks (dataset) VALUES (ds.name);
    PERFORM set_config('lake.restoring', ds.name, true);
    EXECUTE format($q$
        WITH cand AS (
            SELECT u.id, u.user_id, u.ts, u.doc, u.batch_id, u.ingested_at, u.pii,
                   u.ts >= $4 AND u.ts < $5 AS fits
              FROM lake_internal.row_undo AS u
             WHERE u.dataset = $1
               AND (u.undo_xact >= pg_snapshot_xmin($3) OR u.undo_xact = $2)  -- the index
               AND NOT (u.undo_xact <> $2 AND pg_visible_in_snapshot(u.undo_xact, $3))
               AND u.row_xact <> $2 AND pg_visible_in_snapshot(u.row_xact, $3)),
        ins AS (
            INSERT INTO user_data.%1$I AS t (id, user_id, ts, doc, batch_id, ingested_at, pii)
            OVERRIDING SYSTEM VALUE
            SELECT x.id, x.user_id, x.ts, x.doc, x.batch_id, x.ingested_at, x.pii
              FROM cand AS x WHERE x.fits
             ORDER BY x.id
            RETURNING t.*),
        a AS (
            SELECT lake_internal._audit('data.restore', $6, jsonb_build_object('rows', count(*),
                                                                      'checkpoint', $7),
                               NULL, jsonb_agg(to_jsonb(r) - 'part' ORDER BY r.id))
              FROM (SELECT i.*, (row_number() OVER (ORDER BY i.id) - 1) / 1000 AS part
                      FROM ins AS i) AS r
             GROUP BY r.part),
        p AS (
            SELECT lake_internal._pii_scan($1, array_agg(i.id), array_agg(i.user_id::text),
                                  array_agg(%2$s)) AS n
              FROM ins AS i
             WHERE $8
            HAVING count(*) > 0)
        SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM cand WHERE NOT cand.fits),
               (SELECT count(*) FROM a), (SELECT count(*) FROM p)$q$,
        ds.name,
        CASE WHEN cardinality(ds.pii_fields) > 0 THEN 'lake_internal._pii_open(i.doc, i.pii)'
             ELSE 'i.doc' END)
    INTO rows_restored, rows_not_restored, v_audit, v_scan
    USING ds.name, c.xact_id, c.snapshot, ds.partitions_from, ds.partitions_to,
          format('user_data.%I', ds.name), c.id, ds.pii_scan;
    DELETE FROM lake_internal.restore_marks AS m
     WHERE m.xact_id = pg_current_xact_id() AND m.dataset = ds.name;
    PERFORM set_config('lake.restoring', '', true);

    before_checkpoint := b.id;
    PERFORM lake_internal._audit('dataset.rollback', ds.name,
                        jsonb_build_object('checkpoint', c.id, 'label', c.label,
                                           'checkpoint_at', c.created_at,
                                           'before_checkpoint', b.id,
                                           'deleted', rows_deleted, 'restored', rows_restored,
                                           'not_restored', rows_not_restored));
    PERFORM lake_internal._record_duration('rollback', v_started);
    RETURN NEXT;
END
$$;
ALTER FUNCTION lake.rollback(text, bigint) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.rollback(text, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.rollback(text, bigint) TO lake_admin;

COMMENT ON FUNCTION lake.rollback(text, bigint) IS
    'Return a dataset to one of its last 5 checkpoints, row for row; undoable. Administrators.';
