-- Whether lake.apply_retention goes on with the next month of a dataset after this step of
-- lake_internal._retire_month: only after a dropped month (the months stay one contiguous run, so a
-- month kept, held or failed holds back the younger ones; "none" means no month is due).
CREATE FUNCTION lake_internal._retention_more(p_step jsonb)
RETURNS boolean
LANGUAGE sql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(p_step ->> 'action' = 'dropped', false)
$$;
ALTER FUNCTION lake_internal._retention_more(jsonb) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._retention_more(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake_internal._retention_more(jsonb) TO lake_admin;
