-- Sign a new client certificate for a service with the lake's CA (plpython/lake_certs/store.py),
-- whose key the server's OS user holds: {serial, issuer, fingerprint, not_before, not_after,
-- certificate, private_key, ca_certificate}. Records nothing: lake_internal._record_service_cert.
CREATE FUNCTION lake_internal._sign_service_cert(p_service text)
RETURNS jsonb
LANGUAGE plpython3u
VOLATILE
AS $$
if "lake_ready" not in GD:
    plpy.execute("SELECT lake_internal._plpy_bootstrap()")
import json
from lake_certs.store import issue_service

folder = plpy.execute("SELECT lake_internal._tls_dir() AS d")[0]["d"]
try:
    return json.dumps(issue_service(folder, p_service))
except FileNotFoundError as exc:
    plpy.error(f"the lake's CA is not in {folder}: {exc.strerror}",
               hint="`lake up` makes it in LAKE_HOME/tls; or set tls_dir (lake.set_setting)",
               sqlstate="LK017")
$$;
REVOKE ALL ON FUNCTION lake_internal._sign_service_cert(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake_internal._sign_service_cert(text) TO lake_owner;
