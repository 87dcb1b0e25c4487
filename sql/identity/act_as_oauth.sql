-- Act for the lake user linked to an OAuth2 identity (provider and subject of a token the caller
-- has verified), with the same rules as lake.act_as(). The lake cannot check such a token itself
-- (providers without ID tokens, e.g. GitHub; lake.authenticate_oidc checks those with one), so it
-- trusts only its gateway: a service whose identity comes from its TLS client certificate
-- (lake.authenticate_cert), not one that authenticated with an API key alone; and
-- administrators. An identity with no link is refused (LK012).
CREATE FUNCTION lake.act_as_oauth(provider text, subject text,
                                  scope text DEFAULT 'transaction')
RETURNS text
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    -- The parameters' names are the documented API; the body uses these aliases.
    p_provider ALIAS FOR provider;
    p_subject ALIAS FOR subject;
    p_scope ALIAS FOR scope;
    v_user text;
    v_me   record;
BEGIN
    SELECT * INTO v_me FROM lake_internal._identity();
    IF NOT (pg_has_role(session_user, 'lake_admin', 'MEMBER')
            OR (v_me.service IS NOT NULL AND v_me.key_id LIKE 'cert:%')) THEN
        RAISE EXCEPTION USING ERRCODE = 'LK012',
            MESSAGE = 'only the gateway, a service identified by its TLS client certificate, may '
                      'act for an OAuth identity',
            HINT = 'Connect with the service''s certificate (lake certs issue) and call '
                   'lake.authenticate_cert() first.';
    END IF;
    SELECT o.user_id INTO v_user FROM lake.oauth_identities AS o
     WHERE o.provider = p_provider AND o.subject = p_subject;
    IF v_user IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'LK012',
            MESSAGE = format('no lake user is linked to %s identity %L', p_provider,
                             left(p_subject, 100)),
            HINT = 'An administrator links it with lake.link_oauth(provider, subject, user_id).';
    END IF;
    RETURN lake.act_as(v_user, p_scope);
END
$$;
ALTER FUNCTION lake.act_as_oauth(text, text, text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.act_as_oauth(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.act_as_oauth(text, text, text) TO lake_admin, lake_service;

COMMENT ON FUNCTION lake.act_as_oauth(text, text, text) IS
    'Act for the lake user linked to an OAuth identity (provider, subject), as lake.act_as; '
    'for a service identified by its TLS client certificate, or an administrator.';
