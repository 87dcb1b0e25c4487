-- Delete the archive files older than the archive_retention setting (7 years) as of now:
-- archives of dropped partitions (and failed ones), whose months are gone from the lake. Each
-- row of lake.archives stays, with status purged and purged_at, as the record that the data
-- existed and when it went; each deletion is audited. Returns how many archives were purged.
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
    RETURN v_count;
END
$$;
ALTER FUNCTION lake.purge_archives(timestamptz) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.purge_archives(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.purge_archives(timestamptz) TO lake_admin;

COMMENT ON FUNCTION lake.purge_archives(timestamptz) IS
    'Delete archive files older than the archive_retention setting; their rows stay (purged). '
    'Administrators.';
