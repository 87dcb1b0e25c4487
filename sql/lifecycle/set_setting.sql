-- Change a lake setting (lake.settings). Known keys only, and the value must read as what the key
-- needs: archive_dir an absolute path or '' (the folder lake_archive next to the data directory);
-- archive_retention, figure_history_retention and restore_hold intervals (a day or more;
-- restore_hold may be 0); lock_timeout a duration from 10 ms to 1 min; lock_attempts 1-10;
-- tablespace_hot, tablespace_warm, tablespace_cold an existing tablespace or '' (do not move);
-- pii_key_rotation an interval of a day or more; pii_rekey_batch 1 to 10 million; backup_full_every
-- and backup_incr_every an hour or more; backup_retention_full 1-100; tls_dir an absolute path or
-- '' (the folder tls next to the data directory); quota_stored_bytes and quota_quarantined_bytes a
-- positive size as pg_size_bytes reads it ('10 GB', '500 MB', bytes); quota_records_per_hour a
-- positive count. Audited.
-- Administrators only.
CREATE FUNCTION lake.set_setting(key text, value text)
RETURNS lake.settings
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    -- The parameters' names are the documented API; the body uses these aliases.
    p_key ALIAS FOR key;
    p_value ALIAS FOR value;
    v_old lake.settings;
    v_new lake.settings;
    v_ok  boolean;
BEGIN
    SELECT * INTO v_old FROM lake.settings WHERE key = p_key FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'LK060',
            MESSAGE = format('unknown setting %L', left(p_key, 100)),
            HINT = 'SELECT key, value, description FROM lake.settings lists the settings.';
    END IF;
    BEGIN
        v_ok := p_value IS NOT NULL AND CASE
            WHEN p_key IN ('archive_dir', 'tls_dir') THEN
                p_value = '' OR (p_value LIKE '/%' AND p_value !~ '[[:cntrl:]]')
            WHEN p_key IN ('archive_retention', 'figure_history_retention') THEN
                p_value::interval >= interval '1 day'
            WHEN p_key = 'restore_hold' THEN p_value::interval >= interval '0'
            WHEN p_key = 'lock_timeout' THEN
                p_value::interval BETWEEN interval '10 milliseconds' AND interval '1 minute'
            WHEN p_key = 'lock_attempts' THEN p_value::integer BETWEEN 1 AND 10
            WHEN p_key = 'pii_key_rotation' THEN p_value::interval >= interval '1 day'
            WHEN p_key = 'pii_rekey_batch' THEN p_value::integer BETWEEN 1 AND 10000000
            WHEN p_key IN ('backup_full_every', 'backup_incr_every') THEN
                p_value::interval >= interval '1 hour'
            WHEN p_key = 'backup_retention_full' THEN p_value::integer BETWEEN 1 AND 100
            WHEN p_key IN ('quota_stored_bytes', 'quota_quarantined_bytes') THEN
                pg_size_bytes(p_value) > 0
            WHEN p_key = 'quota_records_per_hour' THEN p_value::bigint > 0
            WHEN p_key LIKE 'tablespace\_%' THEN
                p_value = '' OR EXISTS (SELECT FROM pg_catalog.pg_tablespace WHERE spcname = p_value)
            ELSE false END;
    EXCEPTION
        WHEN invalid_text_representation OR invalid_datetime_format OR datetime_field_overflow
             OR interval_field_overflow OR numeric_value_out_of_range OR invalid_parameter_value THEN
            v_ok := false;
    END;
    IF NOT v_ok THEN
        RAISE EXCEPTION USING ERRCODE = 'LK060',
            MESSAGE = format('invalid value %L for setting %L', left(p_value, 200), p_key),
            HINT = v_old.description;
    END IF;
    UPDATE lake.settings SET value = p_value WHERE key = p_key RETURNING * INTO v_new;
    PERFORM lake_internal._audit('setting.set', p_key,
                        jsonb_build_object('old', v_old.value, 'new', p_value));
    RETURN v_new;
END
$$;
ALTER FUNCTION lake.set_setting(text, text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.set_setting(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.set_setting(text, text) TO lake_admin;

COMMENT ON FUNCTION lake.set_setting(text, text) IS
    'Change a lake-wide setting (lake.settings), checked and audited. Administrators.';
