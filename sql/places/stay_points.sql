-- Where the session user stayed on a day: the stay points of their location history (Li et al.,
-- 2008). The day's records that have a place, in time order; from each anchor point the run of
-- the points that follow within radius_m metres of it; a run spanning min_minutes or more is a
-- stay (its first and last times, minutes, the centroid of its points, how many), and the next
-- anchor is the first point after it; otherwise the next point is the anchor. The day is the
-- calendar day in time_zone. It runs with the caller's rights: row-level security keeps it to
-- the caller's rows (a service: the user it acts for). Distances on the sphere (enough at stay
-- radius, and faster). LK095: no coordinates declared; LK097: invalid day, minutes, radius or
-- time zone.
CREATE FUNCTION lake.stay_points(dataset text, day date, min_minutes integer DEFAULT 15,
                                 radius_m double precision DEFAULT 100,
                                 time_zone text DEFAULT 'UTC')
RETURNS TABLE (started_at timestamptz, ended_at timestamptz, minutes numeric,
               lat double precision, lon double precision, points integer)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    p_dataset ALIAS FOR dataset;
    v_expr  text;
    v_from  timestamptz;
    v_ts    timestamptz[];
    v_pl    public.geography[];
    v_c     public.geometry;
    n       integer;
    i       integer := 1;
    j       integer;
BEGIN
    SELECT c.expression INTO v_expr FROM lake.dataset_coordinates AS c
     WHERE c.dataset = p_dataset;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'LK095',
            MESSAGE = format('dataset %L declares no coordinates', p_dataset),
            HINT = 'An administrator declares them: lake.declare_coordinates(dataset, lat_field, '
                   'lon_field, scale).';
    END IF;
    BEGIN
        v_from := day::timestamp AT TIME ZONE time_zone;
    EXCEPTION WHEN invalid_parameter_value THEN
        v_from := NULL;  -- an unknown time zone (pg_timezone_names would read every zone file)
    END;
    IF v_from IS NULL OR min_minutes IS NULL OR min_minutes NOT BETWEEN 1 AND 1440
       OR radius_m IS NULL OR radius_m NOT BETWEEN 1 AND 100000 THEN
        RAISE EXCEPTION USING ERRCODE = 'LK097',
            MESSAGE = format('no stay points for day %s, min_minutes %s, radius_m %s, '
                             'time_zone %s', coalesce(day::text, 'NULL'),
                             coalesce(min_minutes::text, 'NULL'),
                             coalesce(radius_m::text, 'NULL'), coalesce(time_zone, 'NULL')),
            HINT = 'min_minutes 1-1440, radius_m 1-100000, time_zone a name such as '
                   'Europe/Berlin (pg_timezone_names).';
    END IF;
    EXECUTE format($q$
        SELECT array_agg(p.ts ORDER BY p.ts, p.id), array_agg(p.place ORDER BY p.ts, p.id)
          FROM (SELECT r.id, r.ts, %1$s AS place
                  FROM user_data.%2$I AS r
                 WHERE r.ts >= $1 AND r.ts < $2) AS p
         WHERE p.place IS NOT NULL$q$, v_expr, p_dataset)
    INTO v_ts, v_pl
    USING v_from, (day + 1)::timestamp AT TIME ZONE time_zone;
    n := coalesce(cardinality(v_ts), 0);
    WHILE i <= n LOOP
        j := i + 1;
        WHILE j <= n AND public.st_distance(v_pl[i], v_pl[j], false) <= radius_m LOOP
            j := j + 1;
        END LOOP;
        IF v_ts[j - 1] - v_ts[i] >= make_interval(mins => min_minutes) THEN
            SELECT public.st_centroid(public.st_collect(g::public.geometry)) INTO v_c
              FROM unnest(v_pl[i:j - 1]) AS g;
            started_at := v_ts[i];
            ended_at := v_ts[j - 1];
            minutes := round(extract(epoch FROM ended_at - started_at) / 60, 1);
            lat := public.st_y(v_c);
            lon := public.st_x(v_c);
            points := j - i;
            RETURN NEXT;
            i := j;
        ELSE
            i := i + 1;
        END IF;
    END LOOP;
END
$$;
ALTER FUNCTION lake.stay_points(text, date, integer, double precision, text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.stay_points(text, date, integer, double precision, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.stay_points(text, date, integer, double precision, text)
    TO lake_read, lake_admin;

COMMENT ON FUNCTION lake.stay_points(text, date, integer, double precision, text) IS
    'Where the session user stayed on a day (in time_zone): runs of their points within '
    'radius_m of the run''s first for min_minutes or more: started_at, ended_at, minutes, the '
    'centroid''s lat and lon, points. Users, services acting for one, administrators acting '
    'for one.';
