-- Bytes the lake holds, as the database and the filesystem have them (storage_usage_bytes in
-- `lake serve`): PostgreSQL per schema (tables with their indexes and TOAST), the partitions
-- of user data per tier (tier_hot, tier_warm, tier_cold, tier_overflow), and the archive folder's
-- files on disk. WAL needs pg_monitor and Redis is not the database's: `lake serve` adds them.
CREATE FUNCTION lake.storage_usage()
RETURNS TABLE (storage_type text, schema text, bytes bigint)
LANGUAGE sql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT 'postgres', n.nspname::text, sum(pg_total_relation_size(c.oid))::bigint
      FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'm') AND n.nspname !~ '^pg_(toast|temp)'
     GROUP BY n.nspname
    UNION ALL
    SELECT 'tier_' || coalesce(p.tier, 'overflow'), 'user_data_partitions', sum(p.bytes)::bigint
      FROM lake.partitions AS p
     GROUP BY 1
    UNION ALL
    SELECT 'archive', '',
           lake_internal._dir_bytes(lake_internal._archive_root(lake_internal._setting('archive_dir')))
$$;
ALTER FUNCTION lake.storage_usage() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.storage_usage() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.storage_usage() TO lake_admin;

COMMENT ON FUNCTION lake.storage_usage() IS
    'Bytes per storage: PostgreSQL per schema, partitions per tier, archive files on disk.';
