-- The committed changes to the session's own lake user's data after the change id `since`, oldest
-- first, at most `max_rows`: what a user (or a service acting for one) may follow of
-- lake.data_changes, which only administrators read whole. Ids follow commit order, so the last id
-- received is a cursor to resume from. Raises LK010 without a lake user.
CREATE FUNCTION lake.user_changes(since bigint, max_rows integer DEFAULT 1000)
RETURNS SETOF lake.data_changes
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_user text := lake.current_user_id();
BEGIN
    IF v_user IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'LK010',
            MESSAGE = 'no lake user in this session: whose changes?',
            HINT = 'Authenticate with a user''s API key, or act_as the user.';
    END IF;
    RETURN QUERY
        SELECT c.*
          FROM lake.data_changes AS c
         WHERE c.id > since AND c.user_id = v_user
         ORDER BY c.id
         LIMIT greatest(max_rows, 0);
END
$$;
ALTER FUNCTION lake.user_changes(bigint, integer) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.user_changes(bigint, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.user_changes(bigint, integer) TO lake_admin, lake_read;
COMMENT ON FUNCTION lake.user_changes(bigint, integer) IS
    'Committed changes to the session user''s data after a change id, in commit order.';
