-- Check an OpenID Connect ID token (plpython/lake_oidc, PyJWT): signature against the keys of the
-- provider whose issuer it names (lake.oidc_providers), issuer, audience, expiry and nonce.
-- Returns {provider, kid, sub, exp} when valid, else {provider, kid, reason}; never the token.
-- For lake.authenticate_oidc(), which establishes the identity and audits.
CREATE FUNCTION lake_internal._oidc_verify(p_token text, p_nonce text)
RETURNS jsonb
LANGUAGE plpython3u
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
if "lake_ready" not in GD:
    plpy.execute("SELECT lake_internal._plpy_bootstrap()")
import json
from lake_oidc import Provider, verify

if "lake_oidc_plan" not in SD:
    SD["lake_oidc_plan"] = plpy.prepare(
        "SELECT p.name, p.issuer, p.audiences, p.jwks::text AS jwks"
        "  FROM lake.oidc_providers AS p WHERE p.issuer = $1", ["text"])


def provider_for_issuer(iss):
    rows = plpy.execute(SD["lake_oidc_plan"], [iss])
    if not rows:
        return None
    r = rows[0]
    return Provider(r["name"], r["issuer"], r["audiences"], json.loads(r["jwks"]))


res = verify(p_token, p_nonce, provider_for_issuer)
out = {"provider": res.provider, "kid": res.kid}
if res.claims is None:
    out["reason"] = res.reason
else:
    out.update(sub=res.claims["sub"], exp=res.claims["exp"])
return json.dumps(out)
$$;
REVOKE ALL ON FUNCTION lake_internal._oidc_verify(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake_internal._oidc_verify(text, text) TO lake_owner;
