-- Scan stored records for personal identifiers (plpython/lake_pii) and record each finding in
-- lake.pii_findings: record id, owner, JSON path and kind, never the value. One call per
-- statement for all its rows; returns how many findings were recorded. p_skip names the
-- top-level field not to scan (the dataset's time field, read as a time already).
CREATE FUNCTION lake._pii_scan(p_dataset text, p_ids bigint[], p_user_ids text[], p_docs jsonb[],
                               p_skip text)
RETURNS integer
LANGUAGE plpython3u
VOLATILE
AS $$
if "lake_ready" not in GD:
    plpy.execute("SELECT lake._plpy_bootstrap()")
import json
from lake_pii import scan

ids, users, paths, kinds = [], [], [], []
for record_id, user_id, doc in zip(p_ids or [], p_user_ids or [], p_docs or []):
    if doc is None:
        continue
    for finding in scan(json.loads(doc), p_skip):
        ids.append(record_id)
        users.append(user_id)
        paths.append(finding.path)
        kinds.append(finding.kind)
if ids:
    if "insert" not in SD:
        SD["insert"] = plpy.prepare(
            "INSERT INTO lake.pii_findings (dataset, record_id, user_id, path, kind)"
            " SELECT $1, f.i, f.u, f.p, f.k"
            "   FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[])"
            "     AS f(i, u, p, k)",
            ["text", "bigint[]", "text[]", "text[]", "text[]"])
    plpy.execute(SD["insert"], [p_dataset, ids, users, paths, kinds])
return len(ids)
$$;
REVOKE ALL ON FUNCTION lake._pii_scan(text, bigint[], text[], jsonb[], text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake._pii_scan(text, bigint[], text[], jsonb[], text) TO lake_owner;
