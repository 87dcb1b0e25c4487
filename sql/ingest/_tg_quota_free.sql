-- AFTER DELETE statement trigger of every user_data table (quota_free): the bytes of the deleted
-- rows are taken off their owners' usage (lake.quota_usage), once a statement. A user's DELETE
-- and erasure free bytes this way (lake.quota_recount sets usage to what the tables hold: see
-- there for what is not freed). Only an existing usage row is updated, so a dataset being dropped
-- is not written again.
CREATE FUNCTION lake_internal._tg_quota_free()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE lake.quota_usage AS u
       SET stored_bytes = u.stored_bytes - f.bytes
      FROM (SELECT o.user_id, sum(pg_column_size(o.doc)) AS bytes
              FROM old_rows AS o WHERE o.user_id IS NOT NULL GROUP BY o.user_id) AS f
     WHERE u.dataset = TG_TABLE_NAME AND u.user_id = f.user_id
       AND u.shard = (SELECT min(x.shard) FROM lake.quota_usage AS x
                       WHERE x.dataset = TG_TABLE_NAME AND x.user_id = f.user_id);
    RETURN NULL;
END
$$;
ALTER FUNCTION lake_internal._tg_quota_free() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._tg_quota_free() FROM PUBLIC;
