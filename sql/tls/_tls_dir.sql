-- The folder of the lake's CA and servers' certificates (plpython/lake_certs/store.py): the
-- tls_dir setting, or when it is '' the folder tls next to the server's data directory (a
-- backend's working directory is the data directory: no privileged setting is read), which is
-- where `lake up` puts them (LAKE_HOME/tls).
CREATE FUNCTION lake_internal._tls_dir()
RETURNS text
LANGUAGE plpython3u
STABLE
AS $$
if "lake_ready" not in GD:
    plpy.execute("SELECT lake_internal._plpy_bootstrap()")
import os
from lake_certs.store import tls_root

setting = plpy.execute("SELECT lake_internal._setting('tls_dir') AS v")[0]["v"]
return tls_root(setting or "", os.getcwd())
$$;
REVOKE ALL ON FUNCTION lake_internal._tls_dir() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake_internal._tls_dir() TO lake_owner;
