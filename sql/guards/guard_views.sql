-- Refuse, at the end of the command, DDL that leaves a view showing user_data rows past
-- row-level security (lake_internal._tg_guard_views). ALTER TABLE can set a view's options, and
-- ALTER ... OWNER, RENAME and the like are ALTER VIEW / ALTER MATERIALIZED VIEW. A superuser can
-- disable event triggers: the catalog tests (and lake.views_bypassing_rls()) are the second line.
CREATE EVENT TRIGGER lake_guard_views ON ddl_command_end
    WHEN TAG IN ('CREATE VIEW', 'ALTER VIEW', 'CREATE MATERIALIZED VIEW',
                 'ALTER MATERIALIZED VIEW', 'ALTER TABLE', 'CREATE RULE', 'GRANT')
    EXECUTE FUNCTION lake_internal._tg_guard_views();

COMMENT ON EVENT TRIGGER lake_guard_views IS
    'Refuses views over user_data that are not security_invoker, and grants on materialized '
    'views over user_data (see lake.views_bypassing_rls()).';
