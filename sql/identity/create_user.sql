-- Register a lake principal: a user (whose data the lake holds) or a service (a gateway that
-- acts for users). Administrators only; audited.
CREATE FUNCTION lake.create_user(id text, display_name text DEFAULT NULL,
                                 kind text DEFAULT 'user')
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
    p_display_name ALIAS FOR display_name;
    p_kind ALIAS FOR kind;
    u lake.users;
BEGIN
    PERFORM lake_internal._check_user_id(p_id);
    IF p_kind IS NULL OR p_kind NOT IN ('user', 'service') THEN
        RAISE EXCEPTION USING ERRCODE = 'LK011',
            MESSAGE = format('invalid principal kind %L', left(p_kind, 100)),
            HINT = 'Use ''user'' or ''service''.';
    END IF;
    INSERT INTO lake.users (id, kind, display_name) VALUES (p_id, p_kind, p_display_name)
    ON CONFLICT (id) DO NOTHING
    RETURNING * INTO u;
    IF u.id IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'LK013',
            MESSAGE = format('lake user %L exists already', p_id),
            HINT = 'SELECT * FROM lake.users lists them.';
    END IF;
    PERFORM lake_internal._audit('user.create', p_id, NULL, NULL, to_jsonb(u));
    RETURN u;
END
$$;
ALTER FUNCTION lake.create_user(text, text, text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.create_user(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.create_user(text, text, text) TO lake_admin;

COMMENT ON FUNCTION lake.create_user(text, text, text) IS
    'Create a principal: a user or a service. Administrators.';
