-- Link an OAuth2 identity (a provider the lake knows: google, github or one of
-- lake.oidc_providers; and the token's subject) to a lake user with scopes for sessions signed in
-- through it (lake.authenticate_oidc), or move an existing link. Administrators only; audited.
CREATE FUNCTION lake.link_oauth(provider text, subject text, user_id text,
                                scopes text[] DEFAULT ARRAY['read', 'write'])
RETURNS void
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
    p_user_id ALIAS FOR user_id;
    p_scopes ALIAS FOR scopes;
    v_before jsonb;
BEGIN
    IF NOT EXISTS (SELECT FROM lake.users WHERE id = p_user_id AND kind = 'user') THEN
        RAISE EXCEPTION USING ERRCODE = 'LK012',
            MESSAGE = format('%L is not a lake user', left(p_user_id, 200)),
            HINT = 'Create the user first with lake.create_user().';
    END IF;
    IF p_provider IS NULL OR (p_provider NOT IN ('google', 'github')
                              AND NOT EXISTS (SELECT FROM lake.oidc_providers AS p
                                               WHERE p.name = p_provider)) THEN
        RAISE EXCEPTION USING ERRCODE = 'check_violation',
            MESSAGE = format('unknown OAuth provider %L', left(p_provider, 100)),
            HINT = 'google, github, or an OpenID Connect provider added with '
                   'lake.set_oidc_provider().';
    END IF;
    SELECT jsonb_build_object('user_id', o.user_id, 'scopes', to_jsonb(o.scopes)) INTO v_before
      FROM lake.oauth_identities AS o
     WHERE o.provider = p_provider AND o.subject = p_subject;
    INSERT INTO lake.oauth_identities AS o (provider, subject, user_id, scopes)
    VALUES (p_provider, p_subject, p_user_id, p_scopes)
    ON CONFLICT (provider, subject) DO UPDATE
       SET user_id = excluded.user_id, scopes = excluded.scopes, created_at = now(),
           created_by = session_user;
    PERFORM lake_internal._audit('oauth.link', p_provider || ':' || p_subject, NULL, v_before,
                        jsonb_build_object('user_id', p_user_id, 'scopes', to_jsonb(p_scopes)));
END
$$;
ALTER FUNCTION lake.link_oauth(text, text, text, text[]) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.link_oauth(text, text, text, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.link_oauth(text, text, text, text[]) TO lake_admin;

COMMENT ON FUNCTION lake.link_oauth(text, text, text, text[]) IS
    'Link an OAuth identity (provider, subject) to a lake user, with the scopes of sessions '
    'signed in through it. Administrators.';
