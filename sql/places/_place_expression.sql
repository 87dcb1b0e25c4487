-- The point expression (lake_internal._place_sql's, as lake.declare_coordinates stored it) of a
-- dataset's records, for the searches lake.near and lake.within (which run as lake_owner); LK095
-- when the dataset declares no coordinates. lake.stay_points runs with its caller's rights, who
-- may not use schema lake_internal: it reads lake.dataset_coordinates itself.
CREATE FUNCTION lake_internal._place_expression(p_dataset text)
RETURNS text
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_expr text;
BEGIN
    SELECT c.expression INTO v_expr FROM lake.dataset_coordinates AS c
     WHERE c.dataset = p_dataset;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'LK095',
            MESSAGE = format('dataset %L declares no coordinates', p_dataset),
            HINT = 'An administrator declares them: lake.declare_coordinates(dataset, lat_field, '
                   'lon_field, scale).';
    END IF;
    RETURN v_expr;
END
$$;
ALTER FUNCTION lake_internal._place_expression(text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._place_expression(text) FROM PUBLIC;
