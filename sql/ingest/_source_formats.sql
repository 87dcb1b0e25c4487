-- The source formats the lake converts (plpython/lake_formats, one module each): name, what it
-- is, how the client reads a file of it, and which members of a zip archive are such files.
CREATE FUNCTION lake_internal._source_formats(
    OUT name text, OUT description text, OUT reader text, OUT member_pattern text)
RETURNS SETOF record
LANGUAGE plpython3u
STABLE
AS $$
if "lake_ready" not in GD:
    plpy.execute("SELECT lake_internal._plpy_bootstrap()")
from lake_formats import describe
return describe()
$$;
ALTER FUNCTION lake_internal._source_formats() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._source_formats() FROM PUBLIC;
