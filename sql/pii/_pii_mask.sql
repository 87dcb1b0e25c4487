-- How a personal identifier shows to those who may not see it: an e-mail address keeps its
-- first character and its domain (j***@example.com), other text its first character and, when
-- long enough to stay unguessable, its last two (+***67); anything else becomes "***".
CREATE FUNCTION lake_internal._pii_mask(p_value jsonb)
RETURNS jsonb
LANGUAGE sql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT to_jsonb(CASE
        WHEN jsonb_typeof(p_value) <> 'string' THEN '***'
        WHEN p_value #>> '{}' LIKE '_%@_%'
            THEN left(p_value #>> '{}', 1) || '***@' || split_part(p_value #>> '{}', '@', 2)
        WHEN length(p_value #>> '{}') >= 8
            THEN left(p_value #>> '{}', 1) || '***' || right(p_value #>> '{}', 2)
        ELSE '***' END)
$$;
ALTER FUNCTION lake_internal._pii_mask(jsonb) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._pii_mask(jsonb) FROM PUBLIC;
