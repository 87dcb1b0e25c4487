-- A statement's source records converted into the dataset's records by its source format
-- (plpython/lake_formats), in order, in one call: the first step of lake_internal._ingest_docs,
-- before the limits and the pass test, so every ingest path converts the same way. A record the
-- converter cannot read becomes {"source_error": ...}, which the dataset's schema refuses; the
-- caller quarantines the record as sent.
CREATE FUNCTION lake_internal._convert(p_format text, p_docs jsonb[])
RETURNS jsonb[]
LANGUAGE plpython3u
STABLE
AS $$
if "lake_ready" not in GD:
    plpy.execute("SELECT lake_internal._plpy_bootstrap()")
from lake_formats import convert_many
return convert_many(p_format, p_docs or [])
$$;
ALTER FUNCTION lake_internal._convert(text, jsonb[]) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._convert(text, jsonb[]) FROM PUBLIC;
