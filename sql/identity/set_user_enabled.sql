-- Disable a lake principal (its keys stop authenticating, services can no longer act for it) or
-- enable it again. Its data stays. Administrators only; audited.
CREATE FUNCTION lake.set_user_enabled(id text, enabled boolean)
RETURNS lake.users
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    -- The parameters' names are the documented API; the body uses these aliases.
    p_id ALIAS FOR id;
    p_enabled ALIAS FOR enabled;
    v_before lake.users;
    u        lake.users;
BEGIN
    SELECT * INTO v_before FROM lake.users WHERE id = p_id FOR UPDATE;
    IF v_before.id IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'LK012',
            MESSAGE = format('no lake user %L', left(p_id, 200));
    END IF;
    UPDATE lake.users
       SET disabled_at = CASE WHEN p_enabled THEN NULL ELSE coalesce(disabled_at, now()) END
     WHERE id = p_id
    RETURNING * INTO u;
    IF NOT p_enabled THEN
        -- Its sessions, and every service's act_as for it, end now.
        DELETE FROM lake_internal.session_identity AS s WHERE s.principal = p_id OR s.acting_user = p_id;
    END IF;
    PERFORM lake_internal._audit(CASE WHEN p_enabled THEN 'user.enable' ELSE 'user.disable' END, p_id,
                        NULL, to_jsonb(v_before), to_jsonb(u));
    RETURN u;
END
$$;
ALTER FUNCTION lake.set_user_enabled(text, boolean) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.set_user_enabled(text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.set_user_enabled(text, boolean) TO lake_admin;

COMMENT ON FUNCTION lake.set_user_enabled(text, boolean) IS
    'Enable or disable a principal; disabling ends its sessions. Administrators.';
