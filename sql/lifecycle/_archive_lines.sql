-- The lines of an archive (one JSON object a row), for lake.restore_partition.
CREATE FUNCTION lake_internal._archive_lines(p_path text)
RETURNS SETOF text
LANGUAGE plpython3u
VOLATILE
AS $$
if "lake_ready" not in GD:
    plpy.execute("SELECT lake_internal._plpy_bootstrap()")
from lake_archive import read_lines

return read_lines(p_path)
$$;
REVOKE ALL ON FUNCTION lake_internal._archive_lines(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake_internal._archive_lines(text) TO lake_owner;
