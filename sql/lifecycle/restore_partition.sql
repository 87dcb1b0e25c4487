-- Bring an archived month of a dataset back: the newest archive of that month whose partition was
-- dropped is read back and its SHA-256 and row count checked against lake.archives first; its rows
-- (ids and every column as archived) are loaded into a fresh table, which is then attached as the
-- month's partition (a CHECK constraint matching the bounds spares the scan under lock), extending
-- the run of partitions backwards: the overflow partition <dataset>_p_before moves down, and months
-- between the restored one and the run come back empty (their archives stay as they are; such an
-- empty month can be restored in turn). The restored month takes records like any month in the
-- lake (retention archives it again, with them, once it is due) and is not archived and dropped
-- again before now + the restore_hold setting (7 days; hold_until in lake.archives).
-- Its records are scanned for personal identifiers again. Returns the archive's row. Administrators
-- only.
CREATE FUNCTION lake.restore_partition(dataset text, month timestamptz,
                                       now timestamptz DEFAULT now())
RETURNS lake.archives
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET lock_timeout = '10s'
AS $$
#variable_conflict use_column
DECLARE
    -- The parameters' names are the documented API; the body uses these aliases.
    p_dataset ALIAS FOR dataset;
    p_month ALIAS FOR month;
    p_now ALIAS FOR now;
    ds       lake.datasets;
    a        lake.archives;
    v_month  timestamptz := lake.month_start(p_month);
    v_next   timestamptz := lake.month_start(p_month) + interval '1 month';
    v_label  text := to_char(lake.month_start(p_month), 'YYYY-MM');
    v_part   text;
    v_dig    jsonb;
    v_man    jsonb;
    v_cols   jsonb;
    v_rows   bigint;
    v_gap    timestamptz;
    v_tmp    text;
    v_holder boolean := false;  -- the month is an empty placeholder inside the run
    v_rows_in boolean;
    v_moved  bigint;
    v_started timestamptz := clock_timestamp();  -- for lake_internal._record_duration
BEGIN
    SELECT * INTO ds FROM lake.datasets WHERE name = p_dataset FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'LK003',
            MESSAGE = format('dataset %L does not exist', p_dataset),
            HINT = 'SELECT name FROM lake.datasets lists the datasets.';
    END IF;
    IF p_month IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'LK011', MESSAGE = 'restore_partition: the month is NULL';
    END IF;
    -- Not while a retention run works on this dataset.
    PERFORM pg_advisory_xact_lock(hashtext('lake.retention'), hashtext(ds.name));
    v_part := lake_internal._partition_name(ds.name, v_month);
    v_tmp := v_part || '_r';
    IF v_month >= ds.partitions_from THEN
        -- A month inside the run that came back empty beside an earlier restore of an older
        -- month is a placeholder: it is filled from its archive, together with the records
        -- stored in it since (held still by the lock); any other month is in the lake already.
        IF v_month < ds.partitions_to
           AND to_regclass(format('user_data_partitions.%I', v_part)) IS NOT NULL THEN
            EXECUTE format('SELECT EXISTS (SELECT FROM ONLY user_data_partitions.%I)', v_part)
            INTO v_rows_in;
            v_holder := NOT v_rows_in
                        OR EXISTS (SELECT FROM lake.archives AS x
                                    WHERE x.dataset = ds.name AND x.month = v_month
                                      AND x.status = 'dropped');
        END IF;
        IF NOT v_holder THEN
            RAISE EXCEPTION USING ERRCODE = 'LK064',
                MESSAGE = format('month %s of dataset %s is in the lake', v_label, ds.name),
                HINT = 'Only months that retention archived and dropped can be restored.';
        END IF;
    END IF;
    SELECT * INTO a FROM lake.archives AS x
     WHERE x.dataset = ds.name AND x.month = v_month AND x.status = 'dropped'
     ORDER BY x.dropped_at DESC, x.id DESC
     LIMIT 1
       FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'LK062',
            MESSAGE = format('no archive of month %s of dataset %s to restore', v_label, ds.name),
            HINT = 'SELECT * FROM lake.archives lists the archives (purged ones are gone).';
    END IF;

    v_dig := lake_internal._archive_digest(a.path);
    IF v_dig ? 'file_error' OR v_dig ->> 'file_sha256' <> a.sha256
       OR (v_dig ->> 'file_rows')::bigint <> a.rows THEN
        RAISE EXCEPTION USING ERRCODE = 'LK065',
            MESSAGE = format('archive %s of %s %s does not verify', a.id, ds.name, v_label),
            DETAIL = format('recorded %s rows, sha256 %s; the file: %s', a.rows, a.sha256,
                            coalesce(v_dig ->> 'file_error',
                                     format('%s rows, sha256 %s', v_dig ->> 'file_rows',
                                            v_dig ->> 'file_sha256'))),
            HINT = 'Nothing was restored. Is the file (' || a.path || ') damaged or replaced?';
    END IF;

    -- A fresh table shaped like the dataset's (no identity: ids come from the archive).
    EXECUTE format('CREATE TABLE user_data_partitions.%I (LIKE user_data.%I)', v_tmp, ds.name);
    v_cols := (SELECT jsonb_agg(jsonb_build_object('name', x.attname,
                                                   'type', format_type(x.atttypid, x.atttypmod))
                                ORDER BY x.attnum)
                 FROM pg_catalog.pg_attribute AS x
                WHERE x.attrelid = format('user_data_partitions.%I', v_tmp)::regclass
                  AND x.attnum > 0 AND NOT x.attisdropped);
    v_man := lake_internal._archive_manifest(a.manifest_path);
    IF v_man IS NULL OR v_man -> 'columns' <> v_cols THEN
        RAISE EXCEPTION USING ERRCODE = 'LK065',
            MESSAGE = format('archive %s has no manifest or other columns than user_data.%s', a.id,
                             ds.name),
            DETAIL = format('manifest %s: %s; table: %s', a.manifest_path,
                            coalesce(v_man -> 'columns', '"unreadable"'), v_cols),
            HINT = 'Nothing was restored.';
    END IF;
    EXECUTE format($q$
        INSERT INTO user_data_partitions.%1$I
        SELECT r.* FROM lake_internal._archive_lines($1) AS l(line),
               jsonb_populate_record(NULL::user_data_partitions.%1$I, l.line::jsonb) AS r$q$,
        v_tmp)
    USING a.path;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    IF v_rows <> a.rows THEN
        RAISE EXCEPTION USING ERRCODE = 'LK065',
            MESSAGE = format('archive %s loaded %s rows, not %s', a.id, v_rows, a.rows),
            HINT = 'Nothing was restored.';
    END IF;
    EXECUTE format('ALTER TABLE user_data_partitions.%I ADD CONSTRAINT %I'
                   ' CHECK (ts >= %L AND ts < %L)', v_tmp, 'restore_bounds', v_month, v_next);
    EXECUTE format('ALTER TABLE user_data_partitions.%I ENABLE ROW LEVEL SECURITY', v_tmp);
    -- Built now, outside the ATTACH, which adopts it as the partition of the parent's index.
    EXECUTE format('CREATE INDEX ON user_data_partitions.%I (user_id, ts)', v_tmp);

    IF v_holder THEN
        -- The placeholder makes way; the records stored in it since move along, ids and all
        -- (their personal-identifier findings are made again below with the archive's).
        EXECUTE format('ALTER TABLE user_data.%I DETACH PARTITION user_data_partitions.%I',
                       ds.name, v_part);
        EXECUTE format('INSERT INTO user_data_partitions.%I SELECT * FROM ONLY'
                       ' user_data_partitions.%I', v_tmp, v_part);
        GET DIAGNOSTICS v_moved = ROW_COUNT;
        IF v_moved > 0 THEN
            EXECUTE format('DELETE FROM lake.pii_findings AS f WHERE f.dataset = $1'
                           ' AND f.record_id IN (SELECT r.id FROM ONLY user_data_partitions.%I'
                           ' AS r)', v_part)
            USING ds.name;
            v_rows := v_rows + v_moved;
        END IF;
        EXECUTE format('DROP TABLE user_data_partitions.%I', v_part);
    ELSE
        -- Extend the run backwards: the overflow partition gives up the range; months between
        -- come back empty.
        PERFORM lake_internal._drop_overflow(ds.name, 'before');
        FOR v_gap IN SELECT generate_series(v_next, ds.partitions_from - interval '1 month',
                                            interval '1 month')
        LOOP
            PERFORM lake_internal._create_partition(ds.name, 'month', v_gap);
        END LOOP;
        PERFORM lake_internal._create_partition(ds.name, 'before', v_month);
        UPDATE lake.datasets SET partitions_from = v_month WHERE name = ds.name;
    END IF;
    EXECUTE format('ALTER TABLE user_data_partitions.%I RENAME TO %I', v_tmp, v_part);
    EXECUTE format('ALTER TABLE user_data.%I ATTACH PARTITION user_data_partitions.%I'
                   ' FOR VALUES FROM (%L) TO (%L)', ds.name, v_part, v_month, v_next);
    EXECUTE format('ALTER TABLE user_data_partitions.%I DROP CONSTRAINT %I', v_part,
                   'restore_bounds');
    -- The month's embeddings come back empty: they are not archived (the service embeds again).
    PERFORM lake_internal._embedding_partition(ds.name, v_month);
    INSERT INTO lake.partition_tiers AS t (dataset, month, partition, tier, as_of)
    VALUES (ds.name, v_month, v_part, lake_internal._tier(ds.tiers, v_next, p_now), p_now)
    ON CONFLICT (dataset, month) DO UPDATE
       SET partition = excluded.partition, tier = excluded.tier, tablespace = NULL,
           as_of = excluded.as_of, changed_at = now();
    IF ds.pii_scan THEN
        EXECUTE format($q$
            SELECT sum(n) FROM (
                SELECT lake_internal._pii_scan($1, array_agg(s.id), array_agg(s.user_id::text),
                                      array_agg(s.doc)) AS n
                  FROM (SELECT r.id, r.user_id, r.doc, row_number() OVER () / 10000 AS g
                          FROM ONLY user_data_partitions.%I AS r) AS s
                 GROUP BY s.g) AS x$q$, v_part)
        USING ds.name;
    END IF;

    UPDATE lake.archives
       SET status = 'restored', restored_at = clock_timestamp(),
           hold_until = p_now + lake_internal._setting('restore_hold')::interval
     WHERE id = a.id
    RETURNING * INTO a;
    PERFORM lake_internal._audit('archive.restore', ds.name || ' ' || v_label,
                        jsonb_build_object('archive_id', a.id, 'rows', v_rows,
                                           'hold_until', a.hold_until));
    PERFORM lake_internal._record_duration('restore', v_started);
    RETURN a;
END
$$;
ALTER FUNCTION lake.restore_partition(text, timestamptz, timestamptz) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.restore_partition(text, timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.restore_partition(text, timestamptz, timestamptz) TO lake_admin;

COMMENT ON FUNCTION lake.restore_partition(text, timestamptz, timestamptz) IS
    'Bring an archived month back from its verified archive, row for row. Administrators.';
