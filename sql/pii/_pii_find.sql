-- The personal identifiers in a statement's documents (plpython/lake_pii): for each finding the
-- document's position in p_docs (from 1), the JSON path and the kind, never the value. Only
-- documents cross into Python: ids and owners stay in SQL (lake_internal._pii_scan).
CREATE FUNCTION lake_internal._pii_find(p_docs jsonb[])
RETURNS TABLE (ord integer, path text, kind text)
LANGUAGE plpython3u
IMMUTABLE
AS $$
if "lake_ready" not in GD:
    plpy.execute("SELECT lake_internal._plpy_bootstrap()")
from lake_pii import scan_text

# Documents arrive as their JSON text; most are ruled out without being parsed.
for n, doc in enumerate(p_docs or (), start=1):
    if doc is not None:
        for finding in scan_text(doc):
            yield (n, finding.path, finding.kind)
$$;
REVOKE ALL ON FUNCTION lake_internal._pii_find(jsonb[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake_internal._pii_find(jsonb[]) TO lake_owner;
