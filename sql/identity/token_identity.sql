-- The identity that this session's lake.identity_token setting carries, when the token holds:
-- signed by a key of lake_internal.identity_signing_keys (so made by lake.identity_token()),
-- issued to this very login role (session_user), not expired, its user and principal still
-- enabled and its API key or certificate not revoked (as far as this server has replayed). Otherwise no row: a
-- hand-made, altered, borrowed or stale token is no identity. It writes nothing, so a hot standby
-- can run it; lake.current_user_id() and lake.has_scope() use it there. Set the token for the
-- transaction only (SET LOCAL, or set_config(..., true)), as the primary's identity is.
CREATE FUNCTION lake.token_identity()
RETURNS TABLE (user_id text, service text, principal text, key_id text, scopes text[],
               expires_at timestamptz)
LANGUAGE plpgsql
STABLE
PARALLEL RESTRICTED
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_token  text := left(current_setting('lake.identity_token', true), 10000);
    v_parts  text[] := regexp_match(v_token, '^(v1\.([0-9]{1,9})\.([0-9a-f]+))\.([0-9a-f]{64})$');
    v_secret bytea;
    v_claims jsonb;
BEGIN
    IF v_parts IS NULL THEN
        RETURN;
    END IF;
    SELECT k.secret INTO v_secret FROM lake_internal.identity_signing_keys AS k
     WHERE k.id = v_parts[2]::integer;
    -- Both sides through HMAC once more, so the comparison's time says nothing about the
    -- signature it expects.
    IF v_secret IS NULL
       OR public.hmac(public.hmac(convert_to(v_parts[1], 'UTF8'), v_secret, 'sha256'), v_secret,
                      'sha256')
          <> public.hmac(decode(v_parts[4], 'hex'), v_secret, 'sha256') THEN
        RETURN;
    END IF;
    v_claims := convert_from(decode(v_parts[3], 'hex'), 'UTF8')::jsonb;  -- ours: it is signed
    IF v_claims ->> 'login' IS DISTINCT FROM session_user::text
       OR to_timestamp((v_claims ->> 'exp')::bigint) <= now()
       OR EXISTS (SELECT FROM lake.users AS u
                   WHERE u.id IN (v_claims ->> 'user', v_claims ->> 'principal')
                     AND u.disabled_at IS NOT NULL)
       OR EXISTS (SELECT FROM lake.api_keys AS k
                   WHERE k.id = v_claims ->> 'key' AND k.revoked_at IS NOT NULL)
       OR EXISTS (SELECT FROM lake.service_certs AS c
                   WHERE 'cert:' || c.serial = v_claims ->> 'key'
                     AND c.revoked_at IS NOT NULL) THEN
        RETURN;
    END IF;
    user_id := v_claims ->> 'user';
    service := v_claims ->> 'service';
    principal := v_claims ->> 'principal';
    key_id := v_claims ->> 'key';
    scopes := ARRAY(SELECT jsonb_array_elements_text(v_claims -> 'scopes'));
    expires_at := to_timestamp((v_claims ->> 'exp')::bigint);
    RETURN NEXT;
END
$$;
ALTER FUNCTION lake.token_identity() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.token_identity() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.token_identity() TO lake_admin, lake_read, lake_write;

COMMENT ON FUNCTION lake.token_identity() IS
    'The identity of this session''s lake.identity_token setting when it holds (signature, login '
    'role, expiry, user enabled, key not revoked); no row otherwise. Read on a hot standby.';
