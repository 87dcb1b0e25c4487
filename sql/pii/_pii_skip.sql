-- The top-level fields of a dataset's records that the PII scan does not look at: the time field
-- (read as a time already) and those the schema in force keeps clear (dataset_schemas.pii_clear).
-- PL/pgSQL rather than SQL: its plan is kept for the session.
CREATE FUNCTION lake_internal._pii_skip(p_dataset text)
RETURNS text[]
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN (SELECT CASE WHEN d.time_field = ANY (s.pii_clear) THEN s.pii_clear
                        ELSE array_append(s.pii_clear, d.time_field) END
              FROM lake.datasets AS d
              JOIN lake.dataset_schemas AS s ON s.dataset = d.name AND s.version = d.schema_version
             WHERE d.name = p_dataset);
END
$$;
ALTER FUNCTION lake_internal._pii_skip(text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._pii_skip(text) FROM PUBLIC;
