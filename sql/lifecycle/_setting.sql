-- The value of one lake setting (lake.settings); an unknown key is a bug in the caller.
CREATE FUNCTION lake_internal._setting(p_key text)
RETURNS text
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_value text;
BEGIN
    SELECT s.value INTO v_value FROM lake.settings AS s WHERE s.key = p_key;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'lake_internal._setting: unknown setting %', p_key;
    END IF;
    RETURN v_value;
END
$$;
ALTER FUNCTION lake_internal._setting(text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._setting(text) FROM PUBLIC;
