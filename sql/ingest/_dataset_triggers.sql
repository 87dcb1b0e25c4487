-- Part of lake.create_dataset, and callable again for an existing dataset: the trigger set of
-- user_data.<name> and of its inbox. Idempotent (each trigger is dropped if it exists, then
-- created), so a migration that changes the set re-applies it to every dataset with
--   SELECT lake_internal._dataset_triggers(name) FROM lake.datasets;
-- instead of copying this DDL. Statement triggers of one event fire in name order, so
-- validate_* runs before write_changes_* (which then records only the rows that stayed).
-- (functions in lake_internal):
--   validate_*       _tg_validate: judge the statement's rows, quarantine the invalid
--   audit_*          _tg_audit_change: changes to stored rows, before and after
--   row_version      _tg_row_version: each row version names its writer (xact_id)
--   undo_*           _tg_keep_undo: what UPDATE, DELETE and TRUNCATE replace, kept in
--                    lake_internal.row_undo for checkpoints and rollback
--   write_changes_*  _tg_capture: change capture into lake.data_changes
--   quota_free       _tg_quota_free: deleted rows free their owners' stored bytes (quotas)
--   pii_protect      _tg_pii_protect: pii_fields encrypted into pii and masked in doc before a
--                    row is stored (only when the dataset has pii_fields)
--   pii_forget*      _tg_pii_forget: findings of personal identifiers go with their records
--                    (only when the dataset is scanned, pii_scan)
--   move_to_dataset  _tg_inbox, on inbox.<name>: validate the COPY's rows and store the valid
CREATE FUNCTION lake_internal._dataset_triggers(p_name text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ds    lake.datasets;
    v_trg record;
BEGIN
    SELECT * INTO STRICT ds FROM lake.datasets WHERE name = p_name;
    FOR v_trg IN
        SELECT * FROM (VALUES
            ('user_data', 'validate_insert', 'AFTER INSERT', 'REFERENCING NEW TABLE AS new_rows',
             'STATEMENT', '_tg_validate', '', true),
            ('user_data', 'validate_update', 'AFTER UPDATE', 'REFERENCING NEW TABLE AS new_rows',
             'STATEMENT', '_tg_validate', '', true),
            ('user_data', 'audit_update', 'AFTER UPDATE',
             'REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows', 'STATEMENT',
             '_tg_audit_change', '', true),
            ('user_data', 'audit_delete', 'AFTER DELETE', 'REFERENCING OLD TABLE AS old_rows',
             'STATEMENT', '_tg_audit_change', '', true),
            ('user_data', 'audit_truncate', 'AFTER TRUNCATE', '', 'STATEMENT',
             '_tg_audit_change', '', true),
            ('user_data', 'row_version', 'BEFORE UPDATE', '', 'ROW', '_tg_row_version', '', true),
            ('user_data', 'undo_update', 'AFTER UPDATE', 'REFERENCING OLD TABLE AS old_rows',
             'STATEMENT', '_tg_keep_undo', '', true),
            ('user_data', 'undo_delete', 'AFTER DELETE', 'REFERENCING OLD TABLE AS old_rows',
             'STATEMENT', '_tg_keep_undo', '', true),
            ('user_data', 'undo_truncate', 'BEFORE TRUNCATE', '', 'STATEMENT', '_tg_keep_undo',
             '', true),
            ('user_data', 'write_changes_insert', 'AFTER INSERT',
             'REFERENCING NEW TABLE AS new_rows', 'STATEMENT', '_tg_capture', '', true),
            ('user_data', 'write_changes_update', 'AFTER UPDATE',
             'REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows', 'STATEMENT',
             '_tg_capture', '', true),
            ('user_data', 'write_changes_delete', 'AFTER DELETE',
             'REFERENCING OLD TABLE AS old_rows', 'STATEMENT', '_tg_capture', '', true),
            ('user_data', 'write_changes_truncate', 'AFTER TRUNCATE', '', 'STATEMENT',
             '_tg_capture', '', true),
            ('user_data', 'quota_free', 'AFTER DELETE', 'REFERENCING OLD TABLE AS old_rows',
             'STATEMENT', '_tg_quota_free', '', true),
            ('user_data', 'pii_protect', 'BEFORE INSERT OR UPDATE', '', 'ROW', '_tg_pii_protect',
             quote_literal(ds.name), cardinality(ds.pii_fields) > 0),
            ('user_data', 'pii_forget', 'AFTER DELETE', 'REFERENCING OLD TABLE AS old_rows',
             'STATEMENT', '_tg_pii_forget', '', ds.pii_scan),
            ('user_data', 'pii_forget_all', 'AFTER TRUNCATE', '', 'STATEMENT', '_tg_pii_forget',
             '', ds.pii_scan),
            ('inbox', 'move_to_dataset', 'AFTER INSERT', 'REFERENCING NEW TABLE AS new_rows',
             'STATEMENT', '_tg_inbox', '', true)
        ) AS t (schema, name, event, refs, level, fn, args, wanted)
    LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS %I ON %I.%I', v_trg.name, v_trg.schema, ds.name);
        IF v_trg.wanted THEN
            EXECUTE format('CREATE TRIGGER %I %s ON %I.%I %s FOR EACH %s '
                           'EXECUTE FUNCTION lake_internal.%I(%s)',
                           v_trg.name, v_trg.event, v_trg.schema, ds.name, v_trg.refs, v_trg.level,
                           v_trg.fn, v_trg.args);
        END IF;
    END LOOP;
END
$$;
ALTER FUNCTION lake_internal._dataset_triggers(text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._dataset_triggers(text) FROM PUBLIC;
