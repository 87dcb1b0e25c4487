-- Refuse what cannot be a lake user id (1-128 characters: letters, digits and . _ @ : + -,
-- starting with a letter or digit), with the lake's error LK011.
CREATE FUNCTION lake_internal._check_user_id(p_user_id text)
RETURNS text
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_user_id IS NULL OR p_user_id !~ '^[A-Za-z0-9][A-Za-z0-9._@:+-]{0,127}$' THEN
        RAISE EXCEPTION USING
            ERRCODE = 'LK011',
            MESSAGE = format('invalid lake user id %L', left(p_user_id, 200)),
            HINT = 'A user id is 1-128 characters: letters, digits and . _ @ : + -, '
                   'starting with a letter or digit.';
    END IF;
    RETURN p_user_id;
END
$$;
ALTER FUNCTION lake_internal._check_user_id(text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._check_user_id(text) FROM PUBLIC;
