-- An audit entry's before or after without a person (for lake_internal._erase_audit): an array of
-- rows (data.update, data.delete, data.restore) loses the rows whose user_id is the person's
-- (NULL when none is left); any other value that mentions the person anywhere (a users row, an
-- OAuth link) becomes NULL; the rest is kept as it is.
CREATE FUNCTION lake_internal._erase_rows(p_value jsonb, p_user text)
RETURNS jsonb
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_kept jsonb;
BEGIN
    IF p_value IS NULL
       OR NOT jsonb_path_exists(p_value, '$.** ? (@ == $u)', jsonb_build_object('u', p_user)) THEN
        RETURN p_value;
    END IF;
    IF jsonb_typeof(p_value) <> 'array' THEN
        RETURN NULL;
    END IF;
    SELECT jsonb_agg(r.value ORDER BY r.o) INTO v_kept
      FROM jsonb_array_elements(p_value) WITH ORDINALITY AS r(value, o)
     WHERE CASE WHEN jsonb_typeof(r.value) = 'object' AND (r.value ? 'user_id')
                    THEN r.value ->> 'user_id' IS DISTINCT FROM p_user
                ELSE NOT jsonb_path_exists(r.value, '$.** ? (@ == $u)',
                                           jsonb_build_object('u', p_user)) END;
    RETURN v_kept;
END
$$;
ALTER FUNCTION lake_internal._erase_rows(jsonb, text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._erase_rows(jsonb, text) FROM PUBLIC;
