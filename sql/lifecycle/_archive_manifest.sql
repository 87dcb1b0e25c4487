-- The manifest of an archive (plpython/lake_archive), or NULL when it cannot be read.
CREATE FUNCTION lake_internal._archive_manifest(p_path text)
RETURNS jsonb
LANGUAGE plpython3u
VOLATILE
AS $$
if "lake_ready" not in GD:
    plpy.execute("SELECT lake_internal._plpy_bootstrap()")
import json
from lake_archive import read_manifest

try:
    return json.dumps(read_manifest(p_path))
except (OSError, ValueError):
    return None
$$;
REVOKE ALL ON FUNCTION lake_internal._archive_manifest(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake_internal._archive_manifest(text) TO lake_owner;
