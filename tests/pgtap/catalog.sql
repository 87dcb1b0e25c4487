-- In-database invariants of the lake's catalog, checked with pgTAP after a dataset exists.
-- Runs against a live lake as a superuser (pg_prove -d lake tests/pgtap/catalog.sql), in one
-- transaction that is rolled back.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
SELECT name FROM lake.create_dataset('tap_points', '{"type": "object", "required": ["ts"]}');

SELECT plan(25);

SELECT has_schema('lake');
SELECT has_schema('user_data');
SELECT has_schema('inbox');
SELECT has_schema('lake_internal');

SELECT is_empty($$
    SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = 'user_data' AND c.relkind IN ('r', 'p')
       AND NOT (c.relrowsecurity AND c.relforcerowsecurity)$$,
    'every user_data table has row-level security enabled and forced');

SELECT is_empty($$
    SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = 'user_data' AND c.relkind IN ('r', 'p')
       AND NOT EXISTS (SELECT FROM pg_policies p WHERE p.schemaname = 'user_data'
                        AND p.tablename = c.relname AND p.policyname = 'user_isolation')$$,
    'every user_data table has the policy user_isolation');

SELECT is_empty($$
    SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname IN ('lake', 'lake_internal') AND p.prosecdef
       AND NOT EXISTS (SELECT FROM unnest(p.proconfig) c
                        WHERE c LIKE 'search_path=pg_catalog, pg_temp')$$,
    'every SECURITY DEFINER function pins search_path to pg_catalog, pg_temp');

SELECT is_empty($$
    SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     JOIN pg_roles r ON r.oid = c.relowner
     WHERE n.nspname IN ('lake', 'lake_internal', 'user_data', 'user_data_partitions', 'inbox')
       AND c.relkind IN ('r', 'p', 'v', 'S', 'i') AND r.rolcanlogin$$,
    'no login role owns a lake table, view, index or sequence');

SELECT is_empty($$
    SELECT rolname FROM pg_roles WHERE rolname LIKE 'lake\_%' AND (rolbypassrls OR rolsuper)$$,
    'no lake role bypasses row-level security');

SELECT is_empty($$
    SELECT partrelid::regclass::text FROM pg_partitioned_table WHERE partdefid <> 0
       AND partrelid::regclass::text LIKE 'user_data.%'$$,
    'no dataset has a DEFAULT partition');

SELECT is_empty($$
    SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname = 'lake_internal'
       AND has_function_privilege('lake_app', p.oid, 'EXECUTE')$$,
    'internal functions (lake_internal._*) are not executable by applications');
SELECT is_empty($$
    SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname = 'lake' AND p.proname LIKE '\_%'$$,
    'schema lake holds no internal (_*) function');
SELECT is_empty($$
    SELECT r.rolname FROM pg_roles r
     WHERE r.rolname IN ('lake_app', 'lake_service', 'lake_read', 'lake_write', 'lake_auditor',
                         'lake_pii_reader')
       AND has_schema_privilege(r.rolname, 'lake_internal', 'USAGE')$$,
    'no application role may use schema lake_internal');
SELECT ok(NOT has_schema_privilege('public', 'lake_internal', 'USAGE'),
          'PUBLIC may not use schema lake_internal');

SELECT ok(NOT has_table_privilege('lake_app', 'lake.quarantine', 'SELECT'),
          'applications cannot read the quarantine');
SELECT ok(NOT has_any_column_privilege('lake_app', 'inbox.tap_points', 'SELECT')
          AND NOT has_table_privilege('lake_app', 'inbox.tap_points', 'DELETE')
          AND has_any_column_privilege('lake_app', 'inbox.tap_points', 'INSERT')
          AND NOT has_column_privilege('lake_app', 'inbox.tap_points', 'xact_id', 'INSERT'),
          'applications may only insert into an inbox');
SELECT ok(has_column_privilege('lake_app', 'user_data.tap_points', 'doc', 'INSERT')
          AND NOT has_column_privilege('lake_app', 'user_data.tap_points', 'xact_id', 'INSERT')
          AND NOT has_column_privilege('lake_app', 'user_data.tap_points', 'xact_id', 'UPDATE')
          AND NOT has_column_privilege('lake_admin', 'user_data.tap_points', 'xact_id', 'UPDATE'),
          'nobody but the lake writes the row version (xact_id) of user data');
SELECT ok(NOT has_any_column_privilege('lake_app', 'lake_internal.row_undo', 'SELECT')
          AND NOT has_any_column_privilege('lake_admin', 'lake_internal.row_undo', 'SELECT')
          AND NOT has_function_privilege('lake_app', 'lake.rollback(text, bigint)', 'EXECUTE'),
          'applications cannot roll back, and nobody reads the undo rows directly');
SELECT ok(NOT has_function_privilege('lake_app', 'lake.act_as(text, text)', 'EXECUTE'),
          'applications cannot establish an identity');

SELECT is_empty($$
    SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = 'user_data' AND c.relkind IN ('r', 'p')
       AND (SELECT count(*) FROM pg_policies p WHERE p.schemaname = 'user_data'
             AND p.tablename = c.relname AND p.permissive = 'RESTRICTIVE'
             AND p.policyname IN ('scope_insert', 'scope_update', 'scope_delete')) <> 3$$,
    'every user_data table enforces the read and write scopes');
SELECT is_empty($$
    SELECT r.rolname, p.privilege_type FROM pg_roles r
     CROSS JOIN (VALUES ('INSERT'), ('UPDATE'), ('DELETE'), ('TRUNCATE')) AS p(privilege_type)
     WHERE r.rolname IN ('lake_app', 'lake_service', 'lake_admin', 'lake_auditor')
       AND (has_table_privilege(r.rolname, 'lake.audit_log', p.privilege_type)
            OR has_table_privilege(r.rolname, 'lake_internal.audit_head', p.privilege_type)
            OR has_table_privilege(r.rolname, 'lake.audit_pending', p.privilege_type)
            OR has_table_privilege(r.rolname, 'lake_internal.change_pending', p.privilege_type)
            OR has_table_privilege(r.rolname, 'lake_internal.change_head', p.privilege_type)
            OR has_table_privilege(r.rolname, 'lake_internal.sealer_wakeup', p.privilege_type))$$,
    'no application role may write the audit log, the change log''s machinery or the heads');
SELECT ok(NOT has_table_privilege('lake_auditor', 'user_data.tap_points', 'SELECT')
          AND has_table_privilege('lake_auditor', 'lake.audit_log', 'SELECT'),
          'auditors read the audit log, not user data');
SELECT ok(NOT has_column_privilege('lake_admin', 'lake.api_keys', 'secret_sha256', 'SELECT'),
          'nobody but the owner reads the key hashes');

SELECT is_empty($$
    SELECT r.rolname FROM pg_roles r
     WHERE r.rolname IN ('lake_app', 'lake_service', 'lake_admin', 'lake_auditor',
                         'lake_pii_reader')
       AND has_any_column_privilege(r.rolname, 'lake_internal.pii_keys', 'SELECT')$$,
    'no application role can read the PII key');

SELECT is_empty($$
    SELECT 'function ' || p.oid::regprocedure::text FROM pg_proc AS p
     WHERE p.pronamespace = 'lake'::regnamespace AND obj_description(p.oid, 'pg_proc') IS NULL
    UNION ALL
    SELECT 'relation ' || c.oid::regclass::text FROM pg_class AS c
     WHERE c.relnamespace IN ('lake'::regnamespace, 'user_data'::regnamespace)
       AND c.relkind IN ('r', 'p', 'v', 'm') AND NOT c.relispartition
       AND obj_description(c.oid, 'pg_class') IS NULL
    UNION ALL
    SELECT 'column ' || c.oid::regclass::text || '.' || a.attname FROM pg_class AS c
      JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
     WHERE c.relnamespace IN ('lake'::regnamespace, 'user_data'::regnamespace)
       AND c.relkind IN ('r', 'p', 'v', 'm') AND NOT c.relispartition
       AND col_description(c.oid, a.attnum) IS NULL$$,
    'every public function, table, view and column (lake, user_data) has a comment');

SELECT * FROM finish();
ROLLBACK;
