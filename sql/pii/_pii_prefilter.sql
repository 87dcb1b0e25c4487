-- The regular expression that the JSON text of every document holding a personal identifier
-- matches (plpython/lake_pii: PREFILTER, derived there from the detectors, which check it too):
-- the SQL side of the scan's pre-filter, so ordinary documents never cross into Python
-- (lake_internal._pii_prefilter_sql puts it into the ingest paths' statements as a constant).
CREATE FUNCTION lake_internal._pii_prefilter()
RETURNS text
LANGUAGE plpython3u
IMMUTABLE
AS $$
if "lake_ready" not in GD:
    plpy.execute("SELECT lake_internal._plpy_bootstrap()")
from lake_pii import PREFILTER
return PREFILTER
$$;
REVOKE ALL ON FUNCTION lake_internal._pii_prefilter() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake_internal._pii_prefilter() TO lake_owner;
