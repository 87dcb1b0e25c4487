-- The personal identifiers in a statement's documents (plpython/lake_pii): for each finding the
-- document's position in p_docs (from 1), the JSON path and the kind, never the value. p_skip
-- names the top-level field not to scan (the dataset's time field, read as a time already).
-- Only documents cross into Python: ids and owners stay in SQL (lake._pii_scan).
CREATE FUNCTION lake._pii_find(p_docs jsonb[], p_skip text)
RETURNS TABLE (ord integer, path text, kind text)
LANGUAGE plpython3u
IMMUTABLE
AS $$
if "lake_ready" not in GD:
    plpy.execute("SELECT lake._plpy_bootstrap()")
import json
from lake_pii import scan

loads = json.loads
for n, doc in enumerate(p_docs or (), start=1):
    if doc is not None:
        for finding in scan(loads(doc), p_skip):
            yield (n, finding.path, finding.kind)
$$;
REVOKE ALL ON FUNCTION lake._pii_find(jsonb[], text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake._pii_find(jsonb[], text) TO lake_owner;
