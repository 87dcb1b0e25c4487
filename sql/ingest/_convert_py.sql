-- The conversion of source records by a format written in Python (plpython/lake_formats), in
-- order, in one call; see lake_internal._convert.
CREATE FUNCTION lake_internal._convert_py(p_format text, p_docs jsonb[])
RETURNS jsonb[]
LANGUAGE plpython3u
STABLE
AS $$
if "lake_ready" not in GD:
    plpy.execute("SELECT lake_internal._plpy_bootstrap()")
from lake_formats import convert_many
return convert_many(p_format, p_docs or [])
$$;
ALTER FUNCTION lake_internal._convert_py(text, jsonb[]) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._convert_py(text, jsonb[]) FROM PUBLIC;
