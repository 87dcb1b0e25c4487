-- Link an OAuth2 identity (provider 'google' or 'github', and the token's subject) to a lake
-- user, or move an existing link to another user. Administrators only; audited.
CREATE FUNCTION lake.link_oauth(provider text, subject text, user_id text)
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
    v_before text;
BEGIN
    IF NOT EXISTS (SELECT FROM lake.users WHERE id = p_user_id AND kind = 'user') THEN
        RAISE EXCEPTION USING ERRCODE = 'LK012',
            MESSAGE = format('%L is not a lake user', left(p_user_id, 200)),
            HINT = 'Create the user first with lake.create_user().';
    END IF;
    SELECT user_id INTO v_before FROM lake.oauth_identities
     WHERE provider = p_provider AND subject = p_subject;
    INSERT INTO lake.oauth_identities AS o (provider, subject, user_id)
    VALUES (p_provider, p_subject, p_user_id)
    ON CONFLICT (provider, subject) DO UPDATE
       SET user_id = excluded.user_id, created_at = now(), created_by = session_user;
    PERFORM lake_internal._audit('oauth.link', p_provider || ':' || p_subject, NULL,
                        CASE WHEN v_before IS NOT NULL
                             THEN jsonb_build_object('user_id', v_before) END,
                        jsonb_build_object('user_id', p_user_id));
END
$$;
ALTER FUNCTION lake.link_oauth(text, text, text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.link_oauth(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.link_oauth(text, text, text) TO lake_admin;

COMMENT ON FUNCTION lake.link_oauth(text, text, text) IS
    'Link an OAuth identity (google or github subject) to a lake user. Administrators.';
