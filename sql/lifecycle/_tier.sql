-- The storage tier of a partition whose upper bound is p_range_to, at p_now, by its dataset's
-- tiers ({"hot": "30 days", "warm": "90 days", "cold": "365 days"}): hot while the bound is
-- younger than hot, then warm, then cold, then expired. A tier missing from p_tiers is skipped.
CREATE FUNCTION lake_internal._tier(p_tiers jsonb, p_range_to timestamptz, p_now timestamptz)
RETURNS text
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN p_range_to IS NULL THEN NULL
                WHEN p_range_to > p_now - (p_tiers ->> 'hot')::interval THEN 'hot'
                WHEN p_range_to > p_now - (p_tiers ->> 'warm')::interval THEN 'warm'
                WHEN p_range_to > p_now - (p_tiers ->> 'cold')::interval THEN 'cold'
                ELSE 'expired' END
$$;
ALTER FUNCTION lake_internal._tier(jsonb, timestamptz, timestamptz) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._tier(jsonb, timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake_internal._tier(jsonb, timestamptz, timestamptz) TO lake_admin;
