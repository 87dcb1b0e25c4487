-- Scan stored records for personal identifiers (lake._pii_find) and record each finding in
-- lake.pii_findings: record id, owner, JSON path and kind, never the value. One call per
-- statement for all its rows; returns how many findings were recorded.
CREATE FUNCTION lake._pii_scan(p_dataset text, p_ids bigint[], p_user_ids text[], p_docs jsonb[],
                               p_skip text)
RETURNS integer
LANGUAGE sql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH ins AS (
        INSERT INTO lake.pii_findings (dataset, record_id, user_id, path, kind)
        SELECT p_dataset, p_ids[f.ord], p_user_ids[f.ord], f.path, f.kind
          FROM lake._pii_find(p_docs, p_skip) AS f
        RETURNING 1)
    SELECT count(*)::integer FROM ins
$$;
ALTER FUNCTION lake._pii_scan(text, bigint[], text[], jsonb[], text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake._pii_scan(text, bigint[], text[], jsonb[], text) FROM PUBLIC;
