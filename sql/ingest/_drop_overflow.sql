-- Remove an overflow partition so the range it covered can be given to new months. It is empty
-- by construction (the validation trigger quarantines whatever lands there); checked anyway.
CREATE FUNCTION lake_internal._drop_overflow(p_dataset text, p_kind text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_name  text := p_dataset || '_p_' || p_kind;
    v_rows  boolean;
BEGIN
    IF to_regclass(format('user_data_partitions.%I', v_name)) IS NULL THEN
        RETURN;
    END IF;
    EXECUTE format('SELECT EXISTS (SELECT FROM ONLY user_data_partitions.%I)', v_name) INTO v_rows;
    IF v_rows THEN
        RAISE EXCEPTION 'overflow partition user_data_partitions.% holds rows', v_name
            USING HINT = 'This should never happen: report it, and move the rows with lake.ingest.';
    END IF;
    EXECUTE format('ALTER TABLE user_data.%I DETACH PARTITION user_data_partitions.%I',
                   p_dataset, v_name);
    EXECUTE format('DROP TABLE user_data_partitions.%I', v_name);
END
$$;
ALTER FUNCTION lake_internal._drop_overflow(text, text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._drop_overflow(text, text) FROM PUBLIC;
