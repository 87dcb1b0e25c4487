-- The archive writer for valid records older than the first month in the lake (before
-- lim.archive_before: their month was archived and dropped by retention, or never held data).
-- History is not an error: every ingest path (lake_internal._tg_validate, _tg_inbox,
-- _ingest_docs) hands such records here, and the batch counts them as archived. Per month, in
-- the caller's transaction:
--   1. one writer at a time per dataset, and not while retention or a restore works on it (the
--      same advisory lock); a month that came back into the lake meanwhile is refused (LK064);
--   2. each record becomes the line a stored row would be in the month's archive (row_to_json of
--      a row of user_data.<dataset>: a new id from the dataset's sequence unless given, the
--      owner, ts, doc with pii_fields sealed and masked, batch, ingest time, xact_id);
--   3. the month's current archive (status dropped), when there is one, must verify (row count
--      and SHA-256 as recorded, LK065 otherwise: nothing is stored);
--   4. a new archive file holds its lines and then the new ones (lake_internal._archive_append),
--      is read back from disk and must hold exactly old rows + new rows with the SHA-256 written;
--   5. the new archive is registered (status dropped: it is the month's only copy) and the old
--      one marked superseded. Files are written before they are registered, so a rollback of the
--      batch leaves the old archive in force and the new file unregistered, an orphan that
--      lake.purge_archives deletes; the superseded file goes at the next purge too.
-- lake.restore_partition reads the newest archive of a month as ever, so a restore is row for
-- row: the archived rows and the added records. Returns how many records were archived.
-- p_batch_ids gives each record's batch: the inbox archives a statement's records of several
-- batches (a gRPC Ingest stores up to ten in one COPY) in one file per month, not one per batch.
CREATE FUNCTION lake_internal._archive_records(p_dataset text, p_batch_ids uuid[], p_ids bigint[],
                                               p_user_ids text[], p_tss timestamptz[],
                                               p_docs jsonb[])
RETURNS bigint
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET bytea_output = 'hex'
AS $$
DECLARE
    ds      lake.datasets;
    v_seq   regclass;
    v_cols  jsonb;
    v_root  text;
    v_month timestamptz;
    v_label text;
    v_lines text[];
    v_old   lake.archives;
    v_new   lake.archives;
    v_dig   jsonb;
    v_man   jsonb;
    v_error text;
    v_n     bigint := 0;
BEGIN
    IF coalesce(cardinality(p_docs), 0) = 0 THEN
        RETURN 0;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('lake.retention'), hashtext(p_dataset));
    -- Read after the lock: a restore or retention run that finished meanwhile is seen.
    SELECT * INTO STRICT ds FROM lake.datasets WHERE name = p_dataset;
    v_seq := pg_get_serial_sequence(format('user_data.%I', ds.name), 'id')::regclass;
    v_cols := (SELECT jsonb_agg(jsonb_build_object('name', a.attname,
                                                   'type', format_type(a.atttypid, a.atttypmod))
                                ORDER BY a.attnum)
                 FROM pg_catalog.pg_attribute AS a
                WHERE a.attrelid = format('user_data.%I', ds.name)::regclass
                  AND a.attnum > 0 AND NOT a.attisdropped);
    v_root := lake_internal._archive_root(lake_internal._setting('archive_dir'));

    FOR v_month IN SELECT DISTINCT lake.month_start(t) FROM unnest(p_tss) AS t ORDER BY 1 LOOP
        v_label := to_char(v_month, 'YYYY-MM');
        IF v_month >= ds.partitions_from THEN
            RAISE EXCEPTION USING ERRCODE = 'LK064',
                MESSAGE = format('month %s of dataset %s came back into the lake meanwhile',
                                 v_label, ds.name),
                HINT = 'Nothing of this batch was stored; retry it.';
        END IF;
        EXECUTE format($q$
            SELECT array_agg(row_to_json(r)::text ORDER BY x.o)
              FROM unnest($1::bigint[], $2::text[], $3::timestamptz[], $4::jsonb[], $7::uuid[])
                   WITH ORDINALITY AS x(id, user_id, ts, doc, batch_id, o)
             CROSS JOIN LATERAL lake_internal._pii_seal($5, x.doc) AS s
             CROSS JOIN LATERAL jsonb_populate_record(NULL::user_data.%I, jsonb_build_object(
                   'id', coalesce(x.id, nextval($6)), 'user_id', x.user_id, 'ts', x.ts,
                   'doc', s.doc, 'batch_id', x.batch_id, 'ingested_at', now(), 'pii', s.pii,
                   'xact_id', pg_current_xact_id())) AS r
             WHERE lake.month_start(x.ts) = $8$q$, ds.name)
        INTO v_lines
        USING p_ids, p_user_ids, p_tss, p_docs, ds.pii_fields, v_seq, p_batch_ids, v_month;

        v_old := NULL;
        SELECT * INTO v_old FROM lake.archives AS a
         WHERE a.dataset = ds.name AND a.month = v_month AND a.status = 'dropped'
         ORDER BY a.dropped_at DESC, a.id DESC
         LIMIT 1
           FOR UPDATE;
        IF v_old.id IS NOT NULL THEN
            v_dig := lake_internal._archive_digest(v_old.path);
            IF v_dig ? 'file_error' OR v_dig ->> 'file_sha256' <> v_old.sha256
               OR (v_dig ->> 'file_rows')::bigint <> v_old.rows THEN
                RAISE EXCEPTION USING ERRCODE = 'LK065',
                    MESSAGE = format('archive %s of %s %s does not verify: records of that month '
                                     'cannot be added to it', v_old.id, ds.name, v_label),
                    DETAIL = format('recorded %s rows, sha256 %s; the file: %s', v_old.rows,
                                    v_old.sha256,
                                    coalesce(v_dig ->> 'file_error',
                                             format('%s rows, sha256 %s', v_dig ->> 'file_rows',
                                                    v_dig ->> 'file_sha256'))),
                    HINT = 'Nothing of this batch was stored. Is the file (' || v_old.path
                           || ') damaged or replaced?';
            END IF;
        END IF;

        v_man := lake_internal._archive_append(
            v_old.path, v_lines, ds.name, lake_internal._partition_name(ds.name, v_month),
            v_month, v_root, to_char(clock_timestamp(), 'YYYYMMDD"T"HH24MISSUS"Z"'), v_cols);
        v_dig := lake_internal._archive_digest(v_man ->> 'path');
        v_error := CASE
            WHEN v_dig ? 'file_error' THEN v_dig ->> 'file_error'
            WHEN v_dig ->> 'file_sha256' <> v_man ->> 'sha256'
                 OR (v_dig ->> 'file_rows')::bigint <> (v_man ->> 'row_count')::bigint
                 OR (v_man ->> 'row_count')::bigint <> coalesce(v_old.rows, 0) + cardinality(v_lines)
                THEN format('read back %s rows, sha256 %s; written %s rows, sha256 %s; expected '
                            '%s rows', v_dig ->> 'file_rows', v_dig ->> 'file_sha256',
                            v_man ->> 'row_count', v_man ->> 'sha256',
                            coalesce(v_old.rows, 0) + cardinality(v_lines)) END;
        IF v_error IS NOT NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'LK065',
                MESSAGE = format('the archive of %s %s did not verify after adding records',
                                 ds.name, v_label),
                DETAIL = v_error,
                HINT = 'Nothing of this batch was stored; the unregistered file '
                       || (v_man ->> 'path') || ' is deleted by lake.purge_archives.';
        END IF;
        INSERT INTO lake.archives AS a
               (dataset, month, partition, path, manifest_path, rows, sha256, bytes, status,
                verified_at, dropped_at)
        VALUES (ds.name, v_month, lake_internal._partition_name(ds.name, v_month),
                v_man ->> 'path', v_man ->> 'manifest_path', (v_man ->> 'row_count')::bigint,
                v_man ->> 'sha256', (v_man ->> 'bytes')::bigint, 'dropped', clock_timestamp(),
                clock_timestamp())
        RETURNING a.* INTO v_new;
        IF v_old.id IS NOT NULL THEN
            UPDATE lake.archives SET status = 'superseded' WHERE id = v_old.id;
        END IF;
        PERFORM lake_internal._audit('archive.append', ds.name || ' ' || v_label,
                                     jsonb_build_object('archive_id', v_new.id,
                                                        'superseded', v_old.id,
                                                        'batch_ids', (
                                                            SELECT jsonb_agg(DISTINCT b)
                                                              FROM unnest(p_batch_ids) AS b),
                                                        'added', cardinality(v_lines),
                                                        'rows', v_new.rows,
                                                        'sha256', v_new.sha256));
        v_n := v_n + cardinality(v_lines);
    END LOOP;
    RETURN v_n;
END
$$;
ALTER FUNCTION lake_internal._archive_records(text, uuid[], bigint[], text[], timestamptz[], jsonb[])
    OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._archive_records(text, uuid[], bigint[], text[], timestamptz[],
                                                      jsonb[]) FROM PUBLIC;
