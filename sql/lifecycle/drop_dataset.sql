-- Drop a dataset: user_data.<name> with its partitions and triggers, inbox.<name>, and what the
-- lake keeps about it: the registry row and its schema versions, its batches, quarantine, PII
-- findings, checkpoints, before-images and tier records. Data is never lost by accident: while the
-- dataset holds rows it is refused (LK090) unless told how, archive => true or force => true.
--
-- archive => true archives every month that holds rows first, with the retention machinery
-- (lake_internal._retire_month, as of 'infinity': archive, read back and verify, drop, one month
-- after the other) and checks each archive file once more against lake.archives before anything
-- else goes; a month that does not verify stops the drop and nothing is dropped. The archives
-- (files and lake.archives rows, status dropped) outlive the dataset until archive_retention;
-- a dataset created again under the same name finds them (lake.restore_partition brings back
-- months before its run of partitions). force => true drops the rows without archive.
--
-- What stays: the audit log (dataset.drop with the counts and archives; retention.* per month)
-- and the change log lake.data_changes, which its own purge keeps for its window.
CREATE FUNCTION lake.drop_dataset(dataset text, archive boolean DEFAULT false,
                                  force boolean DEFAULT false)
RETURNS jsonb
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
AS $$
#variable_conflict use_column
DECLARE
    -- The parameters' names are the documented API; the body uses these aliases.
    p_dataset ALIAS FOR dataset;
    p_archive ALIAS FOR archive;
    p_force ALIAS FOR force;
    ds           lake.datasets;
    v_rows       bigint;
    v_left       bigint;
    v_first      timestamptz;
    v_step       jsonb;
    v_archives   bigint[] := '{}';
    a            lake.archives;
    v_dig        jsonb;
    v_quarantine bigint;
    v_batches    bigint;
BEGIN
    SELECT * INTO ds FROM lake.datasets WHERE name = p_dataset FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'LK003',
            MESSAGE = format('dataset %L does not exist', left(p_dataset, 100)),
            HINT = 'SELECT name FROM lake.datasets lists the datasets.';
    END IF;
    -- Nothing arrives while we count, archive and drop; readers go on until the DROP.
    EXECUTE format('LOCK TABLE user_data.%1$I, inbox.%1$I IN SHARE ROW EXCLUSIVE MODE', ds.name);
    EXECUTE format('SELECT count(*) FROM user_data.%I', ds.name) INTO v_rows;
    IF v_rows > 0 AND NOT coalesce(p_archive, false) AND NOT coalesce(p_force, false) THEN
        RAISE EXCEPTION USING ERRCODE = 'LK090',
            MESSAGE = format('dataset %s holds %s rows', ds.name, v_rows),
            HINT = 'archive => true archives every month first (verified files, restorable); '
                   'force => true drops the rows without archive.';
    END IF;

    IF v_rows > 0 AND coalesce(p_archive, false) THEN
        LOOP
            SELECT * INTO ds FROM lake.datasets WHERE name = ds.name;
            EXECUTE format('SELECT min(ts) FROM user_data.%I WHERE ts >= $1 AND ts < $2', ds.name)
               INTO v_first USING ds.partitions_from, ds.partitions_to;
            EXIT WHEN v_first IS NULL;
            -- The run of months must not become empty: give it one more month at its end.
            IF ds.partitions_from + interval '1 month' >= ds.partitions_to THEN
                PERFORM lake.ensure_partitions(ds.name, ds.partitions_to, ds.partitions_to);
            END IF;
            v_step := lake_internal._retire_month(ds.name, 'infinity');
            IF v_step ->> 'action' IS DISTINCT FROM 'dropped' THEN
                RAISE EXCEPTION USING ERRCODE = 'LK065',
                    MESSAGE = format('month %s of dataset %s could not be archived: %s',
                                     v_step ->> 'month', ds.name,
                                     coalesce(v_step ->> 'error', v_step ->> 'reason',
                                              v_step ->> 'action')),
                    HINT = 'Nothing was dropped; see lake.archives and the archive directory.';
            END IF;
            IF v_step ->> 'archive_id' IS NOT NULL THEN
                v_archives := v_archives || (v_step ->> 'archive_id')::bigint;
            END IF;
        END LOOP;
        EXECUTE format('SELECT count(*) FROM user_data.%I', ds.name) INTO v_left;
        IF v_left > 0 THEN
            RAISE EXCEPTION USING ERRCODE = 'LK090',
                MESSAGE = format('dataset %s holds %s rows outside its monthly partitions',
                                 ds.name, v_left),
                HINT = 'Nothing was dropped; see lake.partitions (overflow partitions).';
        END IF;
        -- Each file once more, as it is on disk now, against what lake.archives recorded.
        FOR a IN SELECT * FROM lake.archives AS x WHERE x.id = ANY (v_archives) ORDER BY x.id LOOP
            v_dig := lake_internal._archive_digest(a.path);
            IF v_dig ? 'file_error' OR v_dig ->> 'file_sha256' IS DISTINCT FROM a.sha256
               OR (v_dig ->> 'file_rows')::bigint IS DISTINCT FROM a.rows THEN
                RAISE EXCEPTION USING ERRCODE = 'LK065',
                    MESSAGE = format('archive %s of dataset %s does not verify', a.path, ds.name),
                    DETAIL = v_dig::text,
                    HINT = 'Nothing was dropped.';
            END IF;
        END LOOP;
    END IF;

    SELECT count(*) INTO v_quarantine FROM lake.quarantine AS q WHERE q.dataset = ds.name;
    SELECT count(*) INTO v_batches FROM lake.batches AS b WHERE b.dataset = ds.name;
    -- Its embeddings (lake.declare_embeddings) go with it; their models with the registry row.
    EXECUTE format('DROP TABLE IF EXISTS user_data.%I', ds.name || '__embeddings');
    EXECUTE format('DROP TABLE user_data.%1$I, inbox.%1$I', ds.name);
    DELETE FROM lake_internal.row_undo AS u WHERE u.dataset = ds.name;
    DELETE FROM lake_internal.restore_marks AS m WHERE m.dataset = ds.name;
    DELETE FROM lake.partition_tiers AS t WHERE t.dataset = ds.name;
    -- The rest goes with the registry row (ON DELETE CASCADE): schema versions, batches,
    -- quarantine, PII findings, checkpoints.
    DELETE FROM lake.datasets AS d WHERE d.name = ds.name;
    PERFORM lake_internal._audit('dataset.drop', ds.name,
                        jsonb_build_object('rows', v_rows, 'archive', coalesce(p_archive, false),
                                           'force', coalesce(p_force, false),
                                           'archive_ids', to_jsonb(v_archives),
                                           'quarantine', v_quarantine, 'batches', v_batches));
    RETURN jsonb_build_object('dataset', ds.name, 'rows', v_rows,
                              'archived', coalesce(p_archive, false) AND v_rows > 0,
                              'archive_ids', to_jsonb(v_archives),
                              'quarantine_deleted', v_quarantine, 'batches_deleted', v_batches);
END
$$;
ALTER FUNCTION lake.drop_dataset(text, boolean, boolean) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.drop_dataset(text, boolean, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.drop_dataset(text, boolean, boolean) TO lake_admin;

COMMENT ON FUNCTION lake.drop_dataset(text, boolean, boolean) IS
    'Drop a dataset and what the lake keeps about it; refused while it holds rows unless '
    'archive => true (every month archived and verified first) or force => true. Administrators.';
