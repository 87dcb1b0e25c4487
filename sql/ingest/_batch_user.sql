-- The lake user a batch belongs to: the session's identity, which must have the write scope, or
-- p_for_user when the caller is a lake administrator. Raises otherwise: a batch without an owner,
-- or from a read-only key, is refused whole.
CREATE FUNCTION lake_internal._batch_user(p_for_user text)
RETURNS text
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_user text;
BEGIN
    IF p_for_user IS NOT NULL THEN
        IF NOT pg_has_role(session_user, 'lake_admin', 'MEMBER') THEN
            RAISE EXCEPTION USING ERRCODE = 'LK011',
                MESSAGE = 'only a lake administrator may ingest for another user',
                HINT = 'Leave for_user out to ingest as the session''s own lake user.';
        END IF;
        RETURN lake_internal._check_user_id(p_for_user);
    END IF;
    SELECT i.user_id INTO v_user FROM lake_internal._identity() AS i;
    IF v_user IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'LK010',
            MESSAGE = 'no lake user in this session: every record needs an owner',
            HINT = 'Authenticate with lake.authenticate(''<API key>''), or an administrator '
                   'calls lake.act_as(''<user id>'') first, or passes for_user.';
    END IF;
    PERFORM lake_internal._require_write();
    RETURN v_user;
END
$$;
ALTER FUNCTION lake_internal._batch_user(text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._batch_user(text) FROM PUBLIC;
