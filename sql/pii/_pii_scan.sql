-- Scan stored records for personal identifiers (lake_internal._pii_find) and record each finding in
-- lake.pii_findings: record id, owner, JSON path and kind, never the value. One call per
-- statement for all its rows; returns how many findings were recorded. The top-level fields not
-- worth scanning (the time field, and those the schema in force keeps clear:
-- dataset_schemas.pii_clear) are taken off first, so less crosses into Python.
CREATE FUNCTION lake_internal._pii_scan(p_dataset text, p_ids bigint[], p_user_ids text[], p_docs jsonb[])
RETURNS integer
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_n integer;
BEGIN
    -- PL/pgSQL rather than SQL: its plan is kept for the session, a SQL function's is made
    -- again on every call (most of the cost on a single-row statement).
    WITH skip AS (
        SELECT array_append(s.pii_clear, d.time_field) AS fields
          FROM lake.datasets AS d
          JOIN lake.dataset_schemas AS s ON s.dataset = d.name AND s.version = d.schema_version
         WHERE d.name = p_dataset),
    ins AS (
        INSERT INTO lake.pii_findings (dataset, record_id, user_id, path, kind)
        SELECT p_dataset, p_ids[f.ord], p_user_ids[f.ord], f.path, f.kind
          FROM skip,
               lake_internal._pii_find(ARRAY(SELECT x.d - skip.fields
                                      FROM unnest(p_docs) WITH ORDINALITY AS x(d, o)
                                     ORDER BY x.o)) AS f
        RETURNING 1)
    SELECT count(*)::integer INTO v_n FROM ins;
    RETURN v_n;
END
$$;
ALTER FUNCTION lake_internal._pii_scan(text, bigint[], text[], jsonb[]) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._pii_scan(text, bigint[], text[], jsonb[]) FROM PUBLIC;
