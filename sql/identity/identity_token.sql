-- A token that carries this session's identity to a hot standby, where lake.token_identity()
-- (and so lake.current_user_id() and the RLS policies) accepts it without writing anything.
-- It binds the login role (session_user: another login cannot use it), the lake user, the
-- principal and service, the key that authenticated, the scopes and an expiry (ttl, at most an
-- hour, and never after the identity's own: its key's, certificate's or ID token's), signed with HMAC-SHA-256 under the newest key
-- of lake_internal.identity_signing_keys, which no application role can read. Audited.
--
-- Format: v1.<signing key id>.<claims: JSON, hex>.<signature: hex>.
CREATE FUNCTION lake.identity_token(ttl interval DEFAULT '5 minutes',
                                    OUT token text, OUT expires_at timestamptz)
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    -- The parameters' names are the documented API; the body uses these aliases.
    p_ttl ALIAS FOR ttl;
    v_me      record;
    v_key     lake_internal.identity_signing_keys;
    v_expires timestamptz;
    v_body    text;
BEGIN
    IF p_ttl IS NULL OR p_ttl <= interval '0' OR p_ttl > interval '1 hour' THEN
        RAISE EXCEPTION USING ERRCODE = 'LK011',
            MESSAGE = format('invalid token lifetime %s', p_ttl),
            HINT = 'Ask for a lifetime of more than 0 and at most 1 hour (default 5 minutes).';
    END IF;
    SELECT * INTO v_me FROM lake_internal._identity();
    IF v_me.principal IS NULL AND v_me.user_id IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'LK012',
            MESSAGE = 'this session has no identity to put in a token',
            HINT = 'Call lake.authenticate(), lake.authenticate_cert() or lake.act_as() first.';
    END IF;
    SELECT * INTO v_key FROM lake_internal.identity_signing_keys ORDER BY id DESC LIMIT 1;
    -- Never past the identity's own end: its API key's, certificate's or ID token's expiry.
    SELECT least(now() + p_ttl, max(i.expires_at)) INTO v_expires
      FROM lake_internal.session_identity AS i
     WHERE i.backend_pid = pg_backend_pid();
    -- Whole seconds: what the claims carry is what is checked.
    v_expires := date_trunc('second', v_expires);
    v_body := encode(convert_to(jsonb_build_object(
                  'login', session_user,
                  'user', v_me.user_id,
                  'service', v_me.service,
                  'principal', v_me.principal,
                  'key', v_me.key_id,
                  'scopes', to_jsonb(v_me.scopes),
                  'exp', extract(epoch FROM v_expires)::bigint)::text, 'UTF8'), 'hex');
    v_body := format('v1.%s.%s', v_key.id, v_body);
    token := v_body || '.' || encode(public.hmac(convert_to(v_body, 'UTF8'), v_key.secret, 'sha256'),
                                     'hex');
    expires_at := v_expires;
    PERFORM lake_internal._audit('identity.token', coalesce(v_me.user_id, v_me.principal),
                        jsonb_build_object('expires_at', v_expires, 'service', v_me.service,
                                           'key_id', v_me.key_id));
END
$$;
ALTER FUNCTION lake.identity_token(interval) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.identity_token(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.identity_token(interval) TO lake_admin, lake_read, lake_write;

COMMENT ON FUNCTION lake.identity_token(interval) IS
    'A signed token of this session''s identity (login role, user, scopes, expiry) for reads on '
    'a hot standby (SET lake.identity_token there). Audited.';
