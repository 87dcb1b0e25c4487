-- Add an OpenID Connect provider, or replace its issuer, audiences and keys (a refresh after the
-- provider rotated its keys). The client fetches the discovery document and the JWKS (`lake oidc
-- add|refresh`): the database does not reach the network. Only public keys are kept: a JWKS
-- with private or symmetric key material is refused. Administrators only; audited (key ids).
CREATE FUNCTION lake.set_oidc_provider(name text, issuer text, audiences text[], jwks jsonb)
RETURNS lake.oidc_providers
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    -- The parameters' names are the documented API; the body uses these aliases.
    p_name ALIAS FOR name;
    p_issuer ALIAS FOR issuer;
    p_audiences ALIAS FOR audiences;
    p_jwks ALIAS FOR jwks;
    v_row lake.oidc_providers;
BEGIN
    IF jsonb_typeof(p_jwks -> 'keys') IS DISTINCT FROM 'array'
       OR EXISTS (SELECT FROM jsonb_array_elements(p_jwks -> 'keys') AS k
                   WHERE jsonb_typeof(k) <> 'object'
                      OR NOT k ? 'kty' OR k ->> 'kty' NOT IN ('RSA', 'EC', 'OKP')
                      OR k ?| ARRAY['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']) THEN
        RAISE EXCEPTION USING ERRCODE = 'LK012',
            MESSAGE = format('the keys of OIDC provider %L are not a JWKS of public keys',
                             left(p_name, 100)),
            HINT = 'Pass the document at the provider''s jwks_uri: {"keys": [...]} (RSA, EC or '
                   'OKP public keys).';
    END IF;
    INSERT INTO lake.oidc_providers AS p (name, issuer, audiences, jwks)
    VALUES (p_name, p_issuer, p_audiences, p_jwks)
    ON CONFLICT (name) DO UPDATE
       SET issuer = excluded.issuer, audiences = excluded.audiences, jwks = excluded.jwks,
           fetched_at = now(), updated_by = session_user
    RETURNING * INTO v_row;
    PERFORM lake_internal._audit('oidc.provider', p_name,
                        jsonb_build_object('issuer', p_issuer,
                                           'audiences', to_jsonb(p_audiences),
                                           'kids', (SELECT jsonb_agg(k -> 'kid')
                                                      FROM jsonb_array_elements(p_jwks -> 'keys')
                                                           AS k)));
    RETURN v_row;
END
$$;
ALTER FUNCTION lake.set_oidc_provider(text, text, text[], jsonb) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.set_oidc_provider(text, text, text[], jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.set_oidc_provider(text, text, text[], jsonb) TO lake_admin;

COMMENT ON FUNCTION lake.set_oidc_provider(text, text, text[], jsonb) IS
    'Add an OpenID Connect provider or refresh its issuer, audiences and signing keys (JWKS). '
    'Administrators; audited.';
