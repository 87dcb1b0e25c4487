-- The function of the event trigger lake_guard_views, at the end of DDL that may make, change or
-- grant a view: refuses the command while lake.views_bypassing_rls() finds a view that would show
-- user_data rows past row-level security, naming it and what to do. It looks at the whole catalog,
-- not only the command's objects: GRANT does not tell event triggers its objects, and a view
-- changes what the views over it reach. ALTER TABLE of a table (the lake's partitions) skips it,
-- and GRANT (create_dataset's too) looks only at materialized views.
-- Runs as lake_owner, so any role's DDL can be checked (it reads only the catalog).
CREATE FUNCTION lake_internal._tg_guard_views()
RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v record;
BEGIN
    IF TG_TAG = 'ALTER TABLE' AND NOT EXISTS (
        SELECT FROM pg_event_trigger_ddl_commands() AS c
          JOIN pg_class AS k ON k.oid = c.objid
         WHERE c.classid = 'pg_class'::regclass AND k.relkind IN ('v', 'm')
    ) THEN
        RETURN;
    END IF;
    -- A GRANT can open only a materialized view (a view's hole is its creation's).
    SELECT * INTO v FROM lake.views_bypassing_rls() AS b
     WHERE TG_TAG <> 'GRANT' OR b.kind = 'materialized view'
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'LK052', MESSAGE = v.problem,
            HINT = 'Views over user_data must run with the caller''s rights, so row-level security'
                   ' shows each user only their rows; lake.views_bypassing_rls() lists them all.';
    END IF;
END
$$;
ALTER FUNCTION lake_internal._tg_guard_views() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._tg_guard_views() FROM PUBLIC;
