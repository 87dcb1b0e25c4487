-- The record's point as a SQL expression over its doc, from declared coordinates: the one home
-- of that expression, stored in lake.dataset_coordinates.expression by lake.declare_coordinates,
-- which makes the GiST index on it. No column on the records' table: its archives and restore
-- keep their columns, a declaration rewrites nothing, and no trigger runs for it. Immutable
-- parts only (an index expression must be). A field that is not a JSON number, or is out of
-- range once scaled, gives no point (NULL): the record is kept, it is just nowhere; the JSON
-- Schema is where a dataset insists on coordinates.
CREATE FUNCTION lake_internal._place_sql(p_lat_path text[], p_lon_path text[], p_scale numeric)
RETURNS text
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN format($e$CASE WHEN jsonb_typeof(%1$s) = 'number' AND jsonb_typeof(%2$s) = 'number'
 AND abs(%1$s::numeric * %3$L::numeric) <= 90 AND abs(%2$s::numeric * %3$L::numeric) <= 180
 THEN public.geography(public.st_point((%2$s::numeric * %3$L::numeric)::float8,
 (%1$s::numeric * %3$L::numeric)::float8, 4326)) END$e$,
                  format('(doc #> %L::text[])', p_lat_path),
                  format('(doc #> %L::text[])', p_lon_path), p_scale);
END
$$;
ALTER FUNCTION lake_internal._place_sql(text[], text[], numeric) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._place_sql(text[], text[], numeric) FROM PUBLIC;
