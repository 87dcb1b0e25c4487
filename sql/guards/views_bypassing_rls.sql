-- Views and materialized views that would show the rows of user_data tables past row-level
-- security. A view reads its tables with its owner's rights unless it is security_invoker: made
-- by a role that bypasses RLS (a superuser such as the embedded cluster's postgres, a BYPASSRLS
-- administrator), it shows every user's rows to whoever may read it. So every view that reads a
-- user_data table, directly or through other views, must run with the caller's rights
-- (security_invoker). A materialized view cannot: it stores rows read with its owner's rights at
-- its refresh, so nobody but its owner may read it (no grant to any role or PUBLIC, on the table
-- or a column). One row per such view: the first user_data table it reads and what to do.
-- The guard event trigger (lake_internal._tg_guard_views) refuses DDL that leaves any; the
-- catalog tests check the same. Reading through functions is not followed (a SECURITY DEFINER
-- function is its owner's own decision to share).
CREATE FUNCTION lake.views_bypassing_rls()
RETURNS TABLE (view regclass, kind text, reads regclass, problem text)
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    -- Upwards from the tables (pg_depend's index on what is depended on): the views whose rule
    -- reads a user_data table, then the views whose rule reads one of those, and so on.
    WITH RECURSIVE reach AS (
        SELECT r.ev_class AS viewid, t.oid AS tbl
          FROM pg_class AS t
          JOIN pg_depend AS d
            ON d.refclassid = 'pg_class'::regclass AND d.refobjid = t.oid
           AND d.classid = 'pg_rewrite'::regclass
          JOIN pg_rewrite AS r ON r.oid = d.objid AND r.ev_class <> t.oid
         WHERE t.relnamespace IN ('user_data'::regnamespace, 'user_data_partitions'::regnamespace)
           AND t.relkind IN ('r', 'p')
        UNION
        SELECT r.ev_class, reach.tbl
          FROM reach
          JOIN pg_depend AS d
            ON d.refclassid = 'pg_class'::regclass AND d.refobjid = reach.viewid
           AND d.classid = 'pg_rewrite'::regclass
          JOIN pg_rewrite AS r ON r.oid = d.objid AND r.ev_class <> reach.viewid
    ), over_user_data AS (
        SELECT DISTINCT ON (v.oid) v.oid, v.relkind, v.relowner, v.reloptions, reach.tbl
          FROM reach
          JOIN pg_class AS v ON v.oid = reach.viewid AND v.relkind IN ('v', 'm')
         ORDER BY v.oid, reach.tbl
    )
    SELECT o.oid::regclass,
           CASE o.relkind WHEN 'v' THEN 'view' ELSE 'materialized view' END,
           o.tbl::regclass,
           CASE o.relkind
               WHEN 'v' THEN format(
                   'view %s reads %s with the rights of its owner %s, past row-level security:'
                   ' make it run with the caller''s rights: ALTER VIEW %s SET (security_invoker'
                   ' = true)', o.oid::regclass, o.tbl::regclass, o.relowner::regrole,
                   o.oid::regclass)
               ELSE format(
                   'materialized view %s holds rows of %s read with the rights of its owner %s,'
                   ' past row-level security, and %s may read it: only its owner may (REVOKE'
                   ' SELECT ON %s FROM %s); give applications a view WITH (security_invoker'
                   ' = true) over the table instead', o.oid::regclass, o.tbl::regclass,
                   o.relowner::regrole, g.who, o.oid::regclass, g.who)
           END
      FROM over_user_data AS o
      LEFT JOIN LATERAL (
            SELECT string_agg(DISTINCT CASE a.grantee WHEN 0 THEN 'PUBLIC'
                                       ELSE a.grantee::regrole::text END, ', ') AS who
              FROM (SELECT x.grantee FROM pg_class AS c, aclexplode(c.relacl) AS x
                     WHERE c.oid = o.oid
                    UNION ALL
                    SELECT x.grantee FROM pg_attribute AS c, aclexplode(c.attacl) AS x
                     WHERE c.attrelid = o.oid) AS a
             WHERE a.grantee <> o.relowner
      ) AS g ON o.relkind = 'm'
     WHERE CASE o.relkind
               WHEN 'v' THEN NOT coalesce((SELECT p.option_value::boolean
                                             FROM pg_options_to_table(o.reloptions) AS p
                                            WHERE p.option_name = 'security_invoker'), false)
               ELSE g.who IS NOT NULL
           END
     ORDER BY o.oid::regclass::text
$$;
ALTER FUNCTION lake.views_bypassing_rls() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.views_bypassing_rls() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.views_bypassing_rls() TO lake_admin, lake_auditor;

COMMENT ON FUNCTION lake.views_bypassing_rls() IS
    'Views over user_data tables that are not security_invoker, and materialized views over them '
    'that others than their owner may read: each would show every user''s rows. Should be empty.';
