-- Scan stored records for personal identifiers (lake_internal._pii_find) and record each finding in
-- lake.pii_findings: record id, owner, JSON path and kind, never the value. One call per
-- statement for all its rows; returns how many findings were recorded. The top-level fields not
-- worth scanning (lake_internal._pii_skip) are taken off first, so less crosses into Python. The
-- ingest paths pass only the documents their pre-filter let through
-- (lake_internal._pii_prefilter_sql); Python checks the same condition on what it is given.
CREATE FUNCTION lake_internal._pii_scan(p_dataset text, p_ids bigint[], p_user_ids text[], p_docs jsonb[])
RETURNS integer
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_skip text[];
    v_n    integer;
BEGIN
    IF coalesce(cardinality(p_docs), 0) = 0 THEN
        RETURN 0;  -- the pre-filter left nothing: no need to enter Python
    END IF;
    v_skip := lake_internal._pii_skip(p_dataset);
    -- PL/pgSQL rather than SQL: its plan is kept for the session, a SQL function's is made
    -- again on every call (most of the cost on a single-row statement).
    WITH ins AS (
        INSERT INTO lake.pii_findings (dataset, record_id, user_id, path, kind)
        SELECT p_dataset, p_ids[f.ord], p_user_ids[f.ord], f.path, f.kind
          FROM lake_internal._pii_find(ARRAY(SELECT x.d - v_skip
                                      FROM unnest(p_docs) WITH ORDINALITY AS x(d, o)
                                     ORDER BY x.o)) AS f
        RETURNING 1)
    SELECT count(*)::integer INTO v_n FROM ins;
    RETURN v_n;
END
$$;
ALTER FUNCTION lake_internal._pii_scan(text, bigint[], text[], jsonb[]) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._pii_scan(text, bigint[], text[], jsonb[]) FROM PUBLIC;
