-- Delete archive files (superseded or past archive_retention); returns how many existed.
CREATE FUNCTION lake_internal._archive_remove(p_paths text[])
RETURNS integer
LANGUAGE plpython3u
VOLATILE
AS $$
if "lake_ready" not in GD:
    plpy.execute("SELECT lake_internal._plpy_bootstrap()")
from lake_archive import remove

return remove(p for p in (p_paths or ()) if p)
$$;
REVOKE ALL ON FUNCTION lake_internal._archive_remove(text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake_internal._archive_remove(text[]) TO lake_owner;
