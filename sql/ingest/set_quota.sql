-- Set a dataset's quotas of each user (lake.quotas): stored_bytes, quarantined_bytes,
-- records_per_hour; a NULL argument leaves that quota as it is, reset => true first returns all
-- three to the lake-wide defaults (the settings quota_*, lake.set_setting). Audited
-- (quota.set). Administrators only. Returns the row in force.
CREATE FUNCTION lake.set_quota(
    dataset text,
    stored_bytes bigint DEFAULT NULL,
    quarantined_bytes bigint DEFAULT NULL,
    records_per_hour bigint DEFAULT NULL,
    reset boolean DEFAULT false
)
RETURNS lake.quotas
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    -- The parameters' names are the documented API; the body uses these aliases.
    p_dataset ALIAS FOR dataset;
    p_stored ALIAS FOR stored_bytes;
    p_quarantined ALIAS FOR quarantined_bytes;
    p_records ALIAS FOR records_per_hour;
    p_reset ALIAS FOR reset;
    v_old lake.quotas;
    v_new lake.quotas;
BEGIN
    IF NOT EXISTS (SELECT FROM lake.datasets AS d WHERE d.name = p_dataset) THEN
        RAISE EXCEPTION USING ERRCODE = 'LK003',
            MESSAGE = format('dataset %L does not exist', left(p_dataset, 100));
    END IF;
    IF p_stored <= 0 OR p_quarantined <= 0 OR p_records <= 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'LK005',
            MESSAGE = 'a quota must be positive',
            HINT = 'NULL leaves a quota as it is; reset => true returns to the lake-wide defaults.';
    END IF;
    SELECT * INTO v_old FROM lake.quotas WHERE dataset = p_dataset FOR UPDATE;
    INSERT INTO lake.quotas AS q (dataset, stored_bytes, quarantined_bytes, records_per_hour)
    VALUES (p_dataset, p_stored, p_quarantined, p_records)
    ON CONFLICT (dataset) DO UPDATE
       SET stored_bytes = coalesce(excluded.stored_bytes,
                                   CASE WHEN p_reset THEN NULL ELSE q.stored_bytes END),
           quarantined_bytes = coalesce(excluded.quarantined_bytes,
                                        CASE WHEN p_reset THEN NULL ELSE q.quarantined_bytes END),
           records_per_hour = coalesce(excluded.records_per_hour,
                                       CASE WHEN p_reset THEN NULL ELSE q.records_per_hour END)
    RETURNING * INTO v_new;
    PERFORM lake_internal._audit('quota.set', p_dataset,
                                jsonb_build_object('old', to_jsonb(v_old), 'new', to_jsonb(v_new)));
    RETURN v_new;
END
$$;
ALTER FUNCTION lake.set_quota(text, bigint, bigint, bigint, boolean) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.set_quota(text, bigint, bigint, bigint, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.set_quota(text, bigint, bigint, bigint, boolean) TO lake_admin;

COMMENT ON FUNCTION lake.set_quota(text, bigint, bigint, bigint, boolean) IS
    'Set a dataset''s per-user quotas (NULL: unchanged; reset => true: the lake-wide defaults first). Audited. Administrators.';
