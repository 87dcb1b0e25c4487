-- The session user's records of a dataset within radius_m metres of a point (lat, lon in
-- degrees), nearest first: id, time, distance in metres (WGS 84 spheroid), the record's point
-- (place_lat, place_lon) and the record. Optional: a time range [from_ts, to_ts) (months outside
-- it are pruned) and max_rows (the nearest that many). LK095: no coordinates declared; LK097: a
-- point or radius out of range.
-- Whose rows: the caller's lake user's, lake.current_user_id() (a service: the user it acts for;
-- nobody's without the read scope), the predicate of the records' policy user_isolation
-- (lake_internal._dataset_policies), written out here because the function runs with its
-- owner's rights. Under row-level security PostgreSQL keeps functions that are not LEAKPROOF,
-- as PostGIS's are not, from index conditions, so the GiST index of the place
-- (lake.declare_coordinates) would serve no caller: every month's rows of the user would be
-- measured (588 points within 100 m in make bench-places' data: 1.6 s, by the index 0.1 s).
-- The condition is on the index's own expression (lake.dataset_coordinates.expression).
CREATE FUNCTION lake.near(dataset text, lat double precision, lon double precision,
                          radius_m double precision, from_ts timestamptz DEFAULT NULL,
                          to_ts timestamptz DEFAULT NULL, max_rows integer DEFAULT 1000)
RETURNS TABLE (id bigint, ts timestamptz, distance_m double precision,
               place_lat double precision, place_lon double precision, doc jsonb)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    p_dataset ALIAS FOR dataset;
    p_lat ALIAS FOR lat;
    p_lon ALIAS FOR lon;
    v_expr  text;
    v_where text := '';
BEGIN
    v_expr := lake_internal._place_expression(p_dataset);
    IF p_lat IS NULL OR p_lon IS NULL OR abs(p_lat) > 90 OR abs(p_lon) > 180
       OR radius_m IS NULL OR NOT radius_m BETWEEN 0 AND 20037509
       OR max_rows IS NULL OR max_rows < 1 THEN
        RAISE EXCEPTION USING ERRCODE = 'LK097',
            MESSAGE = format('no search near lat %s, lon %s within %s m (max_rows %s)',
                             coalesce(p_lat::text, 'NULL'), coalesce(p_lon::text, 'NULL'),
                             coalesce(radius_m::text, 'NULL'), coalesce(max_rows::text, 'NULL')),
            HINT = 'lat -90..90, lon -180..180 (degrees), radius_m 0..20037509 (half the '
                   'Earth''s circumference), max_rows >= 1.';
    END IF;
    -- Conditions only when given, so the months outside the range are pruned at planning.
    IF from_ts IS NOT NULL THEN
        v_where := v_where || ' AND r.ts >= $3';
    END IF;
    IF to_ts IS NOT NULL THEN
        v_where := v_where || ' AND r.ts < $4';
    END IF;
    RETURN QUERY EXECUTE format($q$
        SELECT n.id, n.ts, public.st_distance(n.place, $1), public.st_y(n.place::public.geometry),
               public.st_x(n.place::public.geometry), n.doc
          FROM (SELECT r.id, r.ts, r.doc, %1$s AS place
                  FROM user_data.%2$I AS r
                 WHERE r.user_id = (SELECT lake.current_user_id())
                   AND public.st_dwithin(%1$s, $1, $2) %3$s) AS n
         ORDER BY 3, n.ts, n.id
         LIMIT $5$q$, v_expr, p_dataset, v_where)
    USING public.geography(public.st_point(p_lon, p_lat, 4326)), radius_m, from_ts, to_ts,
          max_rows;
END
$$;
ALTER FUNCTION lake.near(text, double precision, double precision, double precision, timestamptz,
                         timestamptz, integer) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.near(text, double precision, double precision, double precision,
                                 timestamptz, timestamptz, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.near(text, double precision, double precision, double precision,
                                    timestamptz, timestamptz, integer) TO lake_read, lake_admin;

COMMENT ON FUNCTION lake.near(text, double precision, double precision, double precision,
                              timestamptz, timestamptz, integer) IS
    'The session user''s records within radius_m metres of (lat, lon), nearest first, in '
    '[from_ts, to_ts) when given (at most max_rows): id, ts, distance_m, place_lat, place_lon, '
    'doc. By the GiST index of the dataset''s place; only the rows of lake.current_user_id(), as '
    'the records'' policy. Users, services acting for one, administrators acting for one.';
