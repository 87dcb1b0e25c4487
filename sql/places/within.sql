-- The session user's records of a dataset whose point lies in an area: a GeoJSON Polygon or
-- MultiPolygon (a geometry, or a Feature holding one) in WGS 84 longitude/latitude, in time
-- order: id, time, the record's point (place_lat, place_lon) and the record. Optional: a time
-- range [from_ts, to_ts) (months outside it are pruned) and max_rows (the first that many). Edges
-- are great-circle arcs (geography); the boundary belongs to the area (ST_Covers). LK095: no
-- coordinates declared; LK097: not a (Multi)Polygon.
-- Whose rows, and why with its owner's rights: as lake.near (the GiST index serves no caller
-- under row-level security, PostGIS's functions not being LEAKPROOF).
CREATE FUNCTION lake.within(dataset text, geojson jsonb, from_ts timestamptz DEFAULT NULL,
                            to_ts timestamptz DEFAULT NULL, max_rows integer DEFAULT 10000)
RETURNS TABLE (id bigint, ts timestamptz, place_lat double precision,
               place_lon double precision, doc jsonb)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    p_dataset ALIAS FOR dataset;
    v_expr  text;
    v_where text := '';
    v_geom  public.geometry;
    v_area  public.geography;
BEGIN
    v_expr := lake_internal._place_expression(p_dataset);
    BEGIN
        v_geom := public.st_geomfromgeojson(
            (CASE WHEN geojson ->> 'type' = 'Feature' THEN geojson -> 'geometry'
                  ELSE geojson END)::text);
        IF public.geometrytype(v_geom) IN ('POLYGON', 'MULTIPOLYGON') THEN
            v_area := public.geography(public.st_setsrid(v_geom, 4326));
        END IF;
    EXCEPTION WHEN data_exception OR internal_error THEN
        v_area := NULL;  -- PostGIS reports unreadable GeoJSON as either
    END;
    IF v_area IS NULL OR max_rows IS NULL OR max_rows < 1 THEN
        RAISE EXCEPTION USING ERRCODE = 'LK097',
            MESSAGE = format('not an area to search in: %s (max_rows %s)',
                             left(coalesce(geojson::text, 'NULL'), 200),
                             coalesce(max_rows::text, 'NULL')),
            HINT = 'A GeoJSON Polygon or MultiPolygon (or a Feature of one) with [longitude, '
                   'latitude] positions in degrees; max_rows >= 1.';
    END IF;
    IF from_ts IS NOT NULL THEN
        v_where := v_where || ' AND r.ts >= $2';
    END IF;
    IF to_ts IS NOT NULL THEN
        v_where := v_where || ' AND r.ts < $3';
    END IF;
    RETURN QUERY EXECUTE format($q$
        SELECT n.id, n.ts, public.st_y(n.place::public.geometry),
               public.st_x(n.place::public.geometry), n.doc
          FROM (SELECT r.id, r.ts, r.doc, %1$s AS place
                  FROM user_data.%2$I AS r
                 WHERE r.user_id = (SELECT lake.current_user_id())
                   AND public.st_covers($1, %1$s) %3$s) AS n
         ORDER BY n.ts, n.id
         LIMIT $4$q$, v_expr, p_dataset, v_where)
    USING v_area, from_ts, to_ts, max_rows;
END
$$;
ALTER FUNCTION lake.within(text, jsonb, timestamptz, timestamptz, integer) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.within(text, jsonb, timestamptz, timestamptz, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.within(text, jsonb, timestamptz, timestamptz, integer)
    TO lake_read, lake_admin;

COMMENT ON FUNCTION lake.within(text, jsonb, timestamptz, timestamptz, integer) IS
    'The session user''s records whose point lies in a GeoJSON (Multi)Polygon, in time order, in '
    '[from_ts, to_ts) when given (at most max_rows): id, ts, place_lat, place_lon, doc. By the '
    'GiST index of the dataset''s place; only the rows of lake.current_user_id(), as the '
    'records'' policy. Users, services acting for one, administrators acting for one.';
