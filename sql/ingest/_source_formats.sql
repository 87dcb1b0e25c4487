-- The source formats the lake converts (plpython/lake_formats, one module each): name, what it
-- is, how the client reads a file of it, which members of a zip archive are such files, its
-- conversion when it is one SQL expression over the source record d (NULL: in Python), and the
-- time of the converted record's time_field where that conversion computes it (time_sql, an SQL
-- expression over d; NULL: the lake reads the field).
CREATE FUNCTION lake_internal._source_formats(
    OUT name text, OUT description text, OUT reader text, OUT member_pattern text,
    OUT convert_sql text, OUT time_field text, OUT time_sql text)
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
