-- Declare where a dataset's records keep their coordinates: the latitude and longitude fields
-- (a name, or a dotted path such as location.latitudeE7) and the scale that makes them degrees
-- (1 for degrees, 1e-7 for E7 integers). The record's point, geography(Point) in WGS 84, is the
-- expression lake_internal._place_sql writes; a GiST index on it, made on the partitioned table,
-- gives every month (and every month made later, or restored) its own. Declaring again with
-- other fields or scale makes the index again. Invalid fields or scale: LK096.
CREATE FUNCTION lake.declare_coordinates(dataset text, lat_field text DEFAULT 'lat',
                                         lon_field text DEFAULT 'lon', scale numeric DEFAULT 1)
RETURNS lake.dataset_coordinates
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    p_dataset ALIAS FOR dataset;
    p_scale ALIAS FOR scale;
    c       lake.dataset_coordinates;
    v_old   lake.dataset_coordinates;
    v_lat   text[] := string_to_array(lat_field, '.');
    v_lon   text[] := string_to_array(lon_field, '.');
    v_index text := p_dataset || '_place';
BEGIN
    PERFORM FROM lake.datasets AS d WHERE d.name = p_dataset;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'LK003', MESSAGE = format('no dataset %L', p_dataset);
    END IF;
    SELECT * INTO v_old FROM lake.dataset_coordinates AS d WHERE d.dataset = p_dataset FOR UPDATE;
    BEGIN
        INSERT INTO lake.dataset_coordinates AS d (dataset, lat_path, lon_path, scale, expression)
        VALUES (p_dataset, v_lat, v_lon, p_scale,
                lake_internal._place_sql(v_lat, v_lon, p_scale))
        ON CONFLICT ON CONSTRAINT dataset_coordinates_pkey DO UPDATE
           SET lat_path = excluded.lat_path, lon_path = excluded.lon_path,
               scale = excluded.scale, expression = excluded.expression, created_at = now()
        RETURNING d.* INTO c;
    EXCEPTION WHEN check_violation OR not_null_violation THEN
        RAISE EXCEPTION USING ERRCODE = 'LK096',
            MESSAGE = format('invalid coordinates of dataset %L: %s', p_dataset, SQLERRM),
            HINT = 'lat_field and lon_field: a field name or a dotted path (1-8 names, none '
                   'empty); scale: degrees per unit, above 0 (1 for degrees, 1e-7 for E7).';
    END;
    IF v_old.expression IS DISTINCT FROM c.expression THEN
        EXECUTE format('DROP INDEX IF EXISTS user_data.%I', v_index);
    END IF;
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON user_data.%I USING gist ((%s))', v_index,
                   p_dataset, c.expression);
    PERFORM lake_internal._audit('dataset.coordinates', p_dataset, to_jsonb(c));
    RETURN c;
END
$$;
ALTER FUNCTION lake.declare_coordinates(text, text, text, numeric) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.declare_coordinates(text, text, text, numeric) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.declare_coordinates(text, text, text, numeric) TO lake_admin;

COMMENT ON FUNCTION lake.declare_coordinates(text, text, text, numeric) IS
    'Declare a dataset''s coordinates (latitude and longitude fields or dotted paths, and the '
    'scale to degrees: 1e-7 for E7): the record''s geography(Point) in a GiST index per month, '
    'for lake.near, lake.within and lake.stay_points. Administrators.';
