-- Name of the partition of user_data.<dataset> that holds the UTC month starting at p_month.
CREATE FUNCTION lake_internal._partition_name(p_dataset text, p_month timestamptz)
RETURNS text
LANGUAGE sql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p_dataset || to_char(p_month AT TIME ZONE 'UTC', '"_p"YYYY"_"MM')
$$;
ALTER FUNCTION lake_internal._partition_name(text, timestamptz) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._partition_name(text, timestamptz) FROM PUBLIC;
