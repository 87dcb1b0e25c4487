-- The lake user a batch belongs to: the session's identity, or p_for_user when the caller is a
-- lake administrator. Raises when there is neither: a batch without an owner is refused whole.
CREATE FUNCTION lake._batch_user(p_for_user text)
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
        IF p_for_user !~ '^[A-Za-z0-9][A-Za-z0-9._@:+-]{0,127}$' THEN
            RAISE EXCEPTION USING ERRCODE = 'LK011',
                MESSAGE = format('invalid lake user id %L', left(p_for_user, 200));
        END IF;
        RETURN p_for_user;
    END IF;
    v_user := lake.current_user_id();
    IF v_user IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'LK010',
            MESSAGE = 'no lake user in this session: every record needs an owner',
            HINT = 'An administrator calls lake.act_as(''<user id>'') first, or passes for_user.';
    END IF;
    RETURN v_user;
END
$$;
ALTER FUNCTION lake._batch_user(text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake._batch_user(text) FROM PUBLIC;
