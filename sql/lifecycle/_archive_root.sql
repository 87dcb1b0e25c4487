-- The archive folder (plpython/lake_archive): the archive_dir setting, or when it is '' the
-- folder lake_archive next to the server's data directory (a backend's working directory is
-- the data directory, so no privileged setting needs to be read).
CREATE FUNCTION lake_internal._archive_root(p_setting text)
RETURNS text
LANGUAGE plpython3u
STABLE
AS $$
if "lake_ready" not in GD:
    plpy.execute("SELECT lake_internal._plpy_bootstrap()")
import os
from lake_archive import archive_root

return archive_root(p_setting or "", os.getcwd())
$$;
REVOKE ALL ON FUNCTION lake_internal._archive_root(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake_internal._archive_root(text) TO lake_owner;
