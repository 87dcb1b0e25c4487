-- Delete the archive files older than the archive_retention setting (7 years) as of now:
-- archives of dropped partitions (and failed ones), whose months are gone from the lake. Each
-- row of lake.archives stays, with status purged and purged_at, as the record that the data
-- existed and when it went; each deletion is audited. Returns how many archives were purged.
-- It also deletes the files of archives superseded when records were added to their month
-- (lake_internal._archive_records keeps the old file until its transaction has committed) and
-- orphan archives of this database, which no archive names, last written over a day ago (a
-- batch that wrote one rolled back; a younger one may still be registered by a running
-- transaction).
-- lake.apply_retention calls it at the end of every run. Administrators only.
CREATE FUNCTION lake.purge_archives(now timestamptz DEFAULT now())
RETURNS integer
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    -- The parameters' names are the documented API; the body uses these aliases.
    p_now ALIAS FOR now;
    a       lake.archives;
    v_count integer := 0;
    v_gone  integer;
BEGIN
    FOR a IN SELECT * FROM lake.archives
              WHERE status IN ('dropped', 'failed')
                AND created_at < p_now - lake_internal._setting('archive_retention')::interval
              ORDER BY id
                FOR UPDATE SKIP LOCKED
    LOOP
        PERFORM lake_internal._archive_remove(ARRAY[a.path, a.manifest_path]);
        UPDATE lake.archives SET status = 'purged', purged_at = clock_timestamp()
         WHERE id = a.id;
        PERFORM lake_internal._audit('archive.purge', a.dataset || ' ' || to_char(a.month AT TIME ZONE 'UTC',
                                                                           'YYYY-MM'),
                            jsonb_build_object('archive_id', a.id, 'path', a.path,
                                               'rows', a.rows, 'created_at', a.created_at));
        v_count := v_count + 1;
    END LOOP;

    FOR a IN SELECT * FROM lake.archives
              WHERE status = 'superseded' AND purged_at IS NULL
              ORDER BY id
                FOR UPDATE SKIP LOCKED
    LOOP
        PERFORM lake_internal._archive_remove(ARRAY[a.path, a.manifest_path]);
        UPDATE lake.archives SET purged_at = clock_timestamp() WHERE id = a.id;
    END LOOP;
    -- The file's time is the clock's, so "a day ago" is too (p_now may be a simulated time).
    v_gone := lake_internal._archive_remove(ARRAY(
        SELECT lake_internal._archive_orphans(
                   lake_internal._archive_root(lake_internal._setting('archive_dir')),
                   ARRAY(SELECT x.p FROM lake.archives AS a
                          CROSS JOIN LATERAL unnest(ARRAY[a.path, a.manifest_path]) AS x(p)
                          WHERE a.status IN ('verified', 'dropped', 'restored', 'failed')),
                   least(p_now, clock_timestamp()) - interval '1 day')));
    IF v_gone > 0 THEN
        PERFORM lake_internal._audit('archive.purge_orphans', 'archives',
                                     jsonb_build_object('files', v_gone));
    END IF;
    RETURN v_count;
END
$$;
ALTER FUNCTION lake.purge_archives(timestamptz) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.purge_archives(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.purge_archives(timestamptz) TO lake_admin;

COMMENT ON FUNCTION lake.purge_archives(timestamptz) IS
    'Delete archive files older than the archive_retention setting; their rows stay (purged). '
    'Administrators.';
