-- Record a recovery point of a dataset (see lake.checkpoints): the state other transactions
-- have committed now. Kept for keep (24 hours), after which lake.purge_checkpoints drops it.
-- With min_gap, a call that finds a checkpoint of the same dataset and label younger than
-- that returns it instead of making another: the hourly job passes it, so a late or repeated
-- run does not push real recovery points out of the last 5 that lake.rollback accepts.
-- Administrators (and the lake's jobs).
CREATE FUNCTION lake.checkpoint(
    dataset text,
    label text DEFAULT 'manual',
    keep interval DEFAULT '24 hours',
    min_gap interval DEFAULT NULL
)
RETURNS lake.checkpoints
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    -- The parameters' names are the documented API; the body uses these aliases.
    p_dataset ALIAS FOR dataset;
    p_label ALIAS FOR label;
    p_keep ALIAS FOR keep;
    p_min_gap ALIAS FOR min_gap;
    c lake.checkpoints;
BEGIN
    IF NOT EXISTS (SELECT FROM lake.datasets AS d WHERE d.name = p_dataset) THEN
        RAISE EXCEPTION USING ERRCODE = 'LK003',
            MESSAGE = format('no dataset %L', p_dataset),
            HINT = 'SELECT name FROM lake.datasets lists the datasets.';
    END IF;
    IF p_label IS NULL OR length(p_label) NOT BETWEEN 1 AND 200
       OR p_keep IS NULL OR p_keep <= '0' OR p_min_gap < '0' THEN
        RAISE EXCEPTION USING ERRCODE = 'LK073',
            MESSAGE = 'invalid checkpoint label, keep or minimum gap',
            HINT = 'A label of 1-200 characters, a positive keep interval (e.g. ''24 hours'') and '
                   'no negative gap.';
    END IF;
    -- Before the snapshot: lake.purge_checkpoints (SHARE ROW EXCLUSIVE) must not trim undo
    -- rows between this snapshot and the checkpoint becoming visible to it.
    LOCK TABLE lake.checkpoints IN ROW EXCLUSIVE MODE;
    IF p_min_gap IS NOT NULL THEN
        SELECT * INTO c FROM lake.checkpoints AS k
         WHERE k.dataset = p_dataset AND k.label = p_label
           AND k.created_at > clock_timestamp() - p_min_gap
         ORDER BY k.id DESC LIMIT 1;
        IF FOUND THEN
            RETURN c;
        END IF;
    END IF;
    INSERT INTO lake.checkpoints AS k (dataset, label, snapshot, system_id, keep_for, lake_user)
    VALUES (p_dataset, p_label, pg_current_snapshot(),
            (SELECT s.system_identifier FROM pg_control_system() AS s), p_keep,
            (SELECT i.user_id FROM lake_internal._identity() AS i))
    RETURNING k.* INTO c;
    PERFORM lake_internal._audit('checkpoint.create', p_dataset,
                        jsonb_build_object('checkpoint', c.id, 'label', c.label,
                                           'snapshot', c.snapshot::text));
    RETURN c;
END
$$;
ALTER FUNCTION lake.checkpoint(text, text, interval, interval) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.checkpoint(text, text, interval, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.checkpoint(text, text, interval, interval) TO lake_admin;

COMMENT ON FUNCTION lake.checkpoint(text, text, interval, interval) IS
    'Record a recovery point of a dataset; with min_gap, return a recent one of the same label '
    'instead. Administrators.';
