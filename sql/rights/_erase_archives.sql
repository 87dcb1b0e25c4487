-- Take a person out of the archive files (for lake.erase_user, after their rows left the tables):
-- every archive whose file stands for data (verified, dropped, restored) and holds rows of theirs
-- is written again without them (lake_internal._archive_erase), read back and checked: the new
-- file must hold exactly the rows written, the old count less theirs, and an archive whose
-- partition is still in the lake (verified) must equal that partition as it is now. The new file
-- is registered in the old one's place (same status and times; the old row becomes superseded),
-- and the old file is listed for deletion after the commit (lake.finish_erasure): a rollback
-- leaves every archive as it was. Files that stand for nothing any more (failed, superseded and
-- not yet deleted) but hold their rows are listed for deletion too. One dataset at a time under
-- retention's lock, so no retention run, restore or archived ingest works on it meanwhile. A file
-- that does not verify before or after stops the erasure (LK065): nothing is erased.
-- Returns {"archives": n rewritten, "records": rows left out, "files": [paths to delete]}.
CREATE FUNCTION lake_internal._erase_archives(p_user text, p_erasure bigint)
RETURNS jsonb
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
AS $$
DECLARE
    a       lake.archives;
    v_root  text := lake_internal._archive_root(lake_internal._setting('archive_dir'));
    v_dig   jsonb;
    v_man   jsonb;
    v_error text;
    v_new   bigint;
    v_label text;
    v_n     bigint := 0;
    v_rows  bigint := 0;
    v_files text[] := '{}';
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('lake.retention'), hashtext(d.dataset))
       FROM (SELECT DISTINCT x.dataset FROM lake.archives AS x ORDER BY 1) AS d;
    FOR a IN SELECT * FROM lake.archives AS x
              WHERE x.status IN ('verified', 'dropped', 'restored', 'failed')
                 OR (x.status = 'superseded' AND x.purged_at IS NULL)
              ORDER BY x.id
                FOR UPDATE
    LOOP
        v_label := a.dataset || ' ' || to_char(a.month, 'YYYY-MM');
        IF a.status IN ('failed', 'superseded') THEN
            -- Stands for nothing: its file goes after the commit if it holds their rows.
            v_man := lake_internal._archive_erase(a.path, a.manifest_path, p_user, v_root, NULL,
                                                  p_erasure);
            IF (v_man ->> 'removed')::bigint > 0 THEN
                v_files := v_files || ARRAY[a.path, a.manifest_path];
            END IF;
            CONTINUE;
        END IF;
        v_dig := lake_internal._archive_digest(a.path);
        IF v_dig ? 'file_error' OR v_dig ->> 'file_sha256' <> a.sha256
           OR (v_dig ->> 'file_rows')::bigint <> a.rows THEN
            RAISE EXCEPTION USING ERRCODE = 'LK065',
                MESSAGE = format('archive %s of %s does not verify: the erasure cannot rewrite it',
                                 a.id, v_label),
                DETAIL = format('recorded %s rows, sha256 %s; the file: %s', a.rows, a.sha256,
                                coalesce(v_dig ->> 'file_error',
                                         format('%s rows, sha256 %s', v_dig ->> 'file_rows',
                                                v_dig ->> 'file_sha256'))),
                HINT = 'Nothing was erased. Is the file (' || a.path || ') damaged or replaced?';
        END IF;
        v_man := lake_internal._archive_erase(
            a.path, a.manifest_path, p_user, v_root,
            to_char(clock_timestamp(), 'YYYYMMDD"T"HH24MISSUS"Z"'), p_erasure);
        CONTINUE WHEN (v_man ->> 'removed')::bigint = 0;
        v_dig := lake_internal._archive_digest(
            v_man ->> 'path', CASE WHEN a.status = 'verified' THEN a.partition END);
        v_error := CASE
            WHEN v_dig ? 'file_error' THEN v_dig ->> 'file_error'
            WHEN v_dig ->> 'file_sha256' <> v_man ->> 'sha256'
                 OR (v_dig ->> 'file_rows')::bigint <> (v_man ->> 'row_count')::bigint
                 OR (v_man ->> 'row_count')::bigint <> a.rows - (v_man ->> 'removed')::bigint
                THEN format('read back %s rows, sha256 %s; written %s rows, sha256 %s; expected '
                            '%s rows', v_dig ->> 'file_rows', v_dig ->> 'file_sha256',
                            v_man ->> 'row_count', v_man ->> 'sha256',
                            a.rows - (v_man ->> 'removed')::bigint)
            WHEN a.status = 'verified'
                 AND (v_dig ->> 'table_sha256' <> v_man ->> 'sha256'
                      OR (v_dig ->> 'table_rows')::bigint <> (v_man ->> 'row_count')::bigint)
                THEN format('the partition %s holds %s rows, sha256 %s; the file %s rows, '
                            'sha256 %s', a.partition, v_dig ->> 'table_rows',
                            v_dig ->> 'table_sha256', v_man ->> 'row_count', v_man ->> 'sha256')
            END;
        IF v_error IS NOT NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'LK065',
                MESSAGE = format('the archive of %s did not verify after the erasure', v_label),
                DETAIL = v_error,
                HINT = 'Nothing was erased; the unregistered file ' || (v_man ->> 'path')
                       || ' is deleted by lake.purge_archives.';
        END IF;
        -- The old row first: at most one archive stands for a partition in the lake.
        UPDATE lake.archives SET status = 'superseded' WHERE id = a.id;
        INSERT INTO lake.archives AS x
               (dataset, month, partition, path, manifest_path, rows, sha256, bytes, status,
                error, created_at, verified_at, dropped_at, restored_at, hold_until)
        VALUES (a.dataset, a.month, a.partition, v_man ->> 'path', v_man ->> 'manifest_path',
                (v_man ->> 'row_count')::bigint, v_man ->> 'sha256', (v_man ->> 'bytes')::bigint,
                a.status, a.error, a.created_at, clock_timestamp(), a.dropped_at, a.restored_at,
                a.hold_until)
        RETURNING x.id INTO v_new;
        v_files := v_files || ARRAY[a.path, a.manifest_path];
        v_n := v_n + 1;
        v_rows := v_rows + (v_man ->> 'removed')::bigint;
        PERFORM lake_internal._audit('archive.erase', v_label,
                                     jsonb_build_object('archive_id', v_new, 'superseded', a.id,
                                                        'erasure_id', p_erasure,
                                                        'removed', (v_man ->> 'removed')::bigint,
                                                        'rows', (v_man ->> 'row_count')::bigint,
                                                        'sha256', v_man ->> 'sha256'));
    END LOOP;
    RETURN jsonb_build_object('archives', v_n, 'records', v_rows, 'files', to_jsonb(v_files));
END
$$;
ALTER FUNCTION lake_internal._erase_archives(text, bigint) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._erase_archives(text, bigint) FROM PUBLIC;
