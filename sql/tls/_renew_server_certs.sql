-- Renew the servers' certificates in the lake's tls folder (lake_internal._tls_dir()) that are
-- due at p_now (a third of their life left; every one with p_force): PostgreSQL's and whatever
-- other server's is there (redis, http, grpc), each written atomically, key first, by the
-- server's OS user. Returns [{name, old_serial, new_serial, not_after}]. The caller reloads the
-- configuration and audits (lake_internal._job_server_certs).
CREATE FUNCTION lake_internal._renew_server_certs(p_now timestamptz, p_force boolean)
RETURNS jsonb
LANGUAGE plpython3u
VOLATILE
AS $$
if "lake_ready" not in GD:
    plpy.execute("SELECT lake_internal._plpy_bootstrap()")
import datetime as dt
import json
from lake_certs.store import renew_servers

folder = plpy.execute("SELECT lake_internal._tls_dir() AS d")[0]["d"]
epoch = plpy.execute(plpy.prepare("SELECT extract(epoch FROM $1) AS e", ["timestamptz"]),
                     [p_now])[0]["e"]
now = dt.datetime.fromtimestamp(float(epoch), dt.timezone.utc)
return json.dumps(renew_servers(folder, now, bool(p_force)))
$$;
REVOKE ALL ON FUNCTION lake_internal._renew_server_certs(timestamptz, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake_internal._renew_server_certs(timestamptz, boolean) TO lake_owner;
