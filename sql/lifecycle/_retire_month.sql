-- The retention step for the oldest monthly partition of one dataset, as of p_now: when the month
-- lies wholly before p_now - retention, archive it, verify the archive and drop the partition.
-- One transaction (lake.apply_retention commits after each call):
--   1. one retention at a time per dataset (advisory lock; a restored month waits for its
--      hold_until);
--   2. LOCK the partition IN SHARE MODE: it cannot change (this holds up writes and erasures
--      of that month until the end), while reads and ingest elsewhere go on;
--   3. never drop rows inside the window: bounds and max(ts) are checked;
--   4. the archive: an existing one of this month that still equals the partition is reused
--      (read back and compared again); one that differs from the partition (rows erased since)
--      is superseded and its files deleted; otherwise one is written
--      (lake_internal._archive_write) and read back from disk (lake_internal._archive_digest):
--      its row count and SHA-256 must equal those of the rows streamed from the partition. A mismatch, a damaged or missing file: status
--      failed, nothing dropped. An empty month needs no archive;
--   5. DETACH under lock_timeout, lock_attempts tries with a pause (1 s, 2 s, ...) between: the
--      ACCESS EXCLUSIVE lock on user_data.<dataset> is waited for briefly and held only for the
--      detach and drop, whose cost does not depend on the row count. When every try times out
--      the partition stays (the verified archive is reused next time);
--   6. DROP it, move partitions_from one month on and remake the (empty) overflow partition
--      <dataset>_p_before up to it.
-- Returns a report: action (none, held, busy, kept, failed, dropped), month, rows, archive id,
-- archive (written, reused, none (empty)), archive_ms and drop_ms (the time of the archive and
-- of the detach-and-drop steps).
CREATE FUNCTION lake_internal._retire_month(p_dataset text, p_now timestamptz)
RETURNS jsonb
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
AS $$
DECLARE
    ds          lake.datasets;
    v_month     timestamptz;
    v_next      timestamptz;
    v_cutoff    timestamptz;
    v_label     text;
    v_part      text;
    v_rel       regclass;
    v_from      timestamptz;
    v_to        timestamptz;
    v_live      lake.archives;
    v_arch      lake.archives;
    v_max       timestamptz;
    v_empty     boolean;
    v_dig       jsonb;
    v_man       jsonb;
    v_t0        timestamptz;
    v_archive_ms numeric := 0;
    v_drop_ms   numeric;
    v_attempts  integer := lake_internal._setting('lock_attempts')::integer;
    v_timeout   text := lake_internal._setting('lock_timeout');
    v_attempt   integer := 0;
    v_error     text;
BEGIN
    SELECT * INTO ds FROM lake.datasets WHERE name = p_dataset;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'LK003',
            MESSAGE = format('dataset %L does not exist', p_dataset),
            HINT = 'SELECT name FROM lake.datasets lists the datasets.';
    END IF;
    v_cutoff := p_now - ds.retention;
    v_month := ds.partitions_from;
    v_next := v_month + interval '1 month';
    v_label := to_char(v_month, 'YYYY-MM');
    IF v_next > v_cutoff THEN
        RETURN jsonb_build_object('action', 'none');
    END IF;
    IF NOT pg_try_advisory_xact_lock(hashtext('lake.retention'), hashtext(ds.name)) THEN
        RETURN jsonb_build_object('action', 'busy', 'month', v_label,
                                  'reason', 'another retention run or restore works on it');
    END IF;
    v_part := lake_internal._partition_name(ds.name, v_month);
    v_rel := to_regclass(format('user_data_partitions.%I', v_part));
    SELECT b.range_from, b.range_to INTO v_from, v_to FROM lake_internal._partition_bounds(v_rel) AS b;
    IF v_rel IS NULL OR v_from IS DISTINCT FROM v_month OR v_to IS DISTINCT FROM v_next THEN
        RAISE EXCEPTION USING ERRCODE = 'LK063',
            MESSAGE = format('partition %s of dataset %s is missing or has other bounds',
                             v_part, ds.name),
            HINT = 'The run of monthly partitions is broken: check lake.partitions.';
    END IF;

    SELECT * INTO v_live FROM lake.archives AS a
     WHERE a.dataset = ds.name AND a.month = v_month AND a.status IN ('verified', 'restored');
    IF v_live.status = 'restored' AND v_live.hold_until > p_now THEN
        RETURN jsonb_build_object('action', 'held', 'month', v_label,
                                  'hold_until', v_live.hold_until);
    END IF;

    PERFORM set_config('lock_timeout', v_timeout, true);
    BEGIN
        EXECUTE format('LOCK TABLE user_data_partitions.%I IN SHARE MODE', v_part);
    EXCEPTION WHEN lock_not_available OR deadlock_detected THEN
        RETURN jsonb_build_object('action', 'kept', 'month', v_label,
                                  'reason', 'the partition is being written: ' || SQLERRM);
    END;
    EXECUTE format('SELECT max(ts), NOT EXISTS (SELECT FROM ONLY user_data_partitions.%1$I)'
                   '  FROM ONLY user_data_partitions.%1$I', v_part) INTO v_max, v_empty;
    IF v_max >= v_cutoff OR v_max >= v_next THEN
        RAISE EXCEPTION USING ERRCODE = 'LK063',
            MESSAGE = format('partition %s holds rows inside the retention window (up to %s)',
                             v_part, v_max),
            HINT = 'Nothing was dropped.';
    END IF;

    v_t0 := clock_timestamp();
    IF v_live.id IS NOT NULL THEN
        v_dig := lake_internal._archive_digest(v_live.path, v_part);
        IF v_dig ? 'file_error' OR v_dig ->> 'file_sha256' <> v_live.sha256
           OR (v_dig ->> 'file_rows')::bigint <> v_live.rows THEN
            v_error := format('archive %s does not hold what was recorded (%s rows, sha256 %s): %s',
                              v_live.path, v_live.rows, v_live.sha256,
                              coalesce(v_dig ->> 'file_error',
                                       format('%s rows, sha256 %s', v_dig ->> 'file_rows',
                                              v_dig ->> 'file_sha256')));
            UPDATE lake.archives SET status = 'failed', error = v_error WHERE id = v_live.id;
            PERFORM lake_internal._audit('retention.verify_failed', ds.name || ' ' || v_label,
                                jsonb_build_object('archive_id', v_live.id, 'error', v_error));
            RAISE WARNING 'retention of % %: %', ds.name, v_label, v_error;
            PERFORM lake_internal._record_duration('archive', v_t0, 'error');
            RETURN jsonb_build_object('action', 'failed', 'month', v_label,
                                      'archive_id', v_live.id, 'error', v_error);
        ELSIF v_dig ->> 'table_sha256' <> v_live.sha256
              OR (v_dig ->> 'table_rows')::bigint <> v_live.rows THEN
            -- Rows were erased since: the old file must not outlive them.
            PERFORM lake_internal._archive_remove(ARRAY[v_live.path, v_live.manifest_path]);
            UPDATE lake.archives SET status = 'superseded' WHERE id = v_live.id;
            PERFORM lake_internal._audit('retention.supersede', ds.name || ' ' || v_label,
                                jsonb_build_object('archive_id', v_live.id));
        ELSE
            v_arch := v_live;
        END IF;
    END IF;

    -- A month that came back empty beside a restored one (restore_partition) keeps its own
    -- archive; records stored in it since are not in that archive, and an archive of the
    -- partition alone would hide the older one from a restore: keep the month (restore it first).
    IF v_arch.id IS NULL AND NOT v_empty
       AND EXISTS (SELECT FROM lake.archives AS a
                    WHERE a.dataset = ds.name AND a.month = v_month AND a.status = 'dropped') THEN
        v_error := format('month %s has an archive of its own and received records since it came '
                          'back empty: restore it (lake.restore_partition) so that one archive '
                          'holds both', v_label);
        RAISE WARNING 'retention of % %: %', ds.name, v_label, v_error;
        RETURN jsonb_build_object('action', 'failed', 'month', v_label, 'error', v_error);
    END IF;
    IF v_arch.id IS NULL AND NOT v_empty THEN
        v_man := lake_internal._archive_write(
            v_part, ds.name, v_month, lake_internal._archive_root(lake_internal._setting('archive_dir')),
            to_char(clock_timestamp(), 'YYYYMMDD"T"HH24MISSUS"Z"'),
            (SELECT jsonb_agg(jsonb_build_object('name', a.attname,
                                                 'type', format_type(a.atttypid, a.atttypmod))
                              ORDER BY a.attnum)
               FROM pg_catalog.pg_attribute AS a
              WHERE a.attrelid = v_rel AND a.attnum > 0 AND NOT a.attisdropped));
        v_dig := lake_internal._archive_digest(v_man ->> 'path');
        v_error := CASE
            WHEN v_dig ? 'file_error' THEN v_dig ->> 'file_error'
            WHEN v_dig ->> 'file_sha256' <> v_man ->> 'sha256'
                 OR v_dig ->> 'file_rows' <> v_man ->> 'row_count'
                THEN format('read back %s rows, sha256 %s; the partition holds %s rows, sha256 %s',
                            v_dig ->> 'file_rows', v_dig ->> 'file_sha256',
                            v_man ->> 'row_count', v_man ->> 'sha256') END;
        INSERT INTO lake.archives AS a
               (dataset, month, partition, path, manifest_path, rows, sha256, bytes, status,
                error, verified_at)
        VALUES (ds.name, v_month, v_part, v_man ->> 'path', v_man ->> 'manifest_path',
                (v_man ->> 'row_count')::bigint, v_man ->> 'sha256', (v_man ->> 'bytes')::bigint,
                CASE WHEN v_error IS NULL THEN 'verified' ELSE 'failed' END, v_error,
                CASE WHEN v_error IS NULL THEN clock_timestamp() END)
        RETURNING a.* INTO v_arch;
        IF v_error IS NOT NULL THEN
            PERFORM lake_internal._audit('retention.verify_failed', ds.name || ' ' || v_label,
                                jsonb_build_object('archive_id', v_arch.id, 'error', v_error));
            RAISE WARNING 'retention of % %: archive failed verification: %', ds.name, v_label,
                v_error;
            PERFORM lake_internal._record_duration('archive', v_t0, 'error');
            RETURN jsonb_build_object('action', 'failed', 'month', v_label,
                                      'archive_id', v_arch.id, 'error', v_error);
        END IF;
        PERFORM lake_internal._audit('retention.archive', ds.name || ' ' || v_label,
                            jsonb_build_object('archive_id', v_arch.id, 'path', v_arch.path,
                                               'rows', v_arch.rows, 'sha256', v_arch.sha256,
                                               'bytes', v_arch.bytes));
        -- a month written and verified (data_processing_duration_seconds, operation archive)
        PERFORM lake_internal._record_duration('archive', v_t0);
    END IF;
    v_archive_ms := round(extract(epoch FROM clock_timestamp() - v_t0) * 1000, 3);

    LOOP
        v_attempt := v_attempt + 1;
        BEGIN
            -- Take turns with lake.ensure_partitions, which changes the run of months too.
            PERFORM FROM lake.datasets WHERE name = ds.name FOR UPDATE;
            -- The findings of personal identifiers go with their records.
            IF EXISTS (SELECT FROM lake.pii_findings AS f WHERE f.dataset = ds.name) THEN
                EXECUTE format('DELETE FROM lake.pii_findings AS f WHERE f.dataset = $1'
                               ' AND f.record_id IN (SELECT r.id'
                               ' FROM ONLY user_data_partitions.%I AS r)', v_part)
                USING ds.name;
            END IF;
            v_t0 := clock_timestamp();
            EXECUTE format('ALTER TABLE user_data.%I DETACH PARTITION user_data_partitions.%I',
                           ds.name, v_part);
            EXIT;
        EXCEPTION WHEN lock_not_available OR deadlock_detected THEN
            IF v_attempt >= v_attempts THEN
                PERFORM lake_internal._audit('retention.lock_timeout', ds.name || ' ' || v_label,
                                    jsonb_build_object('attempts', v_attempt,
                                                       'lock_timeout', v_timeout));
                RETURN jsonb_build_object(
                    'action', 'kept', 'month', v_label, 'archive_id', v_arch.id,
                    'archive_ms', v_archive_ms,
                    'reason', format('user_data.%s stayed locked: %s attempt(s) of %s', ds.name,
                                     v_attempt, v_timeout));
            END IF;
            PERFORM pg_sleep(v_attempt);
        END;
    END LOOP;
    EXECUTE format('DROP TABLE user_data_partitions.%I', v_part);
    PERFORM lake_internal._drop_embedding_partition(ds.name, v_month);
    PERFORM lake_internal._drop_overflow(ds.name, 'before');
    PERFORM lake_internal._create_partition(ds.name, 'before', v_next);
    UPDATE lake.datasets SET partitions_from = v_next WHERE name = ds.name;
    DELETE FROM lake.partition_tiers WHERE dataset = ds.name AND month = v_month;
    UPDATE lake.archives SET status = 'dropped', dropped_at = clock_timestamp(), hold_until = NULL
     WHERE id = v_arch.id;
    v_drop_ms := round(extract(epoch FROM clock_timestamp() - v_t0) * 1000, 3);
    PERFORM lake_internal._audit('retention.drop', ds.name || ' ' || v_label,
                        jsonb_build_object('partition', v_part, 'archive_id', v_arch.id,
                                           'rows', coalesce(v_arch.rows, 0)));
    RETURN jsonb_build_object('action', 'dropped', 'month', v_label, 'partition', v_part,
                              'archive_id', v_arch.id, 'rows', coalesce(v_arch.rows, 0),
                              'archive', CASE WHEN v_arch.id IS NULL THEN 'none (empty)'
                                              WHEN v_arch.id = v_live.id THEN 'reused'
                                              ELSE 'written' END,
                              'archive_ms', v_archive_ms, 'drop_ms', v_drop_ms,
                              'attempts', v_attempt);
END
$$;
ALTER FUNCTION lake_internal._retire_month(text, timestamptz) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._retire_month(text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake_internal._retire_month(text, timestamptz) TO lake_admin;
