-- The coordinates a dataset declares (lake.declare_coordinates): where in each record its
-- latitude and longitude are, and the scale that makes them degrees (1e-7 for the E7 integers of
-- Google Takeout). From them lake_internal._place_sql writes the record's point.
CREATE TABLE lake.dataset_coordinates (
    dataset     text PRIMARY KEY REFERENCES lake.datasets (name) ON DELETE CASCADE,
    -- Paths into the record (doc #> path): {lat}, or {location,latitudeE7} for a nested field.
    lat_path    text[] NOT NULL CHECK (cardinality(lat_path) BETWEEN 1 AND 8
                                       AND array_position(lat_path, NULL) IS NULL
                                       AND array_position(lat_path, '') IS NULL),
    lon_path    text[] NOT NULL CHECK (cardinality(lon_path) BETWEEN 1 AND 8
                                       AND array_position(lon_path, NULL) IS NULL
                                       AND array_position(lon_path, '') IS NULL),
    -- degrees = value * scale
    scale       numeric NOT NULL CHECK (scale > 0 AND scale <= 1000),
    -- The point as SQL over doc (lake_internal._place_sql): the expression of the GiST index,
    -- by which lake.near, lake.within and lake.stay_points search (the planner uses the index
    -- where the query's expression is the index's). Kept here so those, which run with the
    -- caller's rights, read it as they read this table.
    expression  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE lake.dataset_coordinates OWNER TO lake_owner;
GRANT SELECT ON lake.dataset_coordinates TO lake_admin, lake_read, lake_write;

COMMENT ON TABLE lake.dataset_coordinates IS
    'The coordinates each dataset declares (lake.declare_coordinates): the record''s point for '
    'lake.near, lake.within and lake.stay_points, kept in a GiST index per partition.';
COMMENT ON COLUMN lake.dataset_coordinates.dataset IS 'The dataset whose records have places.';
COMMENT ON COLUMN lake.dataset_coordinates.lat_path IS
    'Where the latitude is in the record (doc #> lat_path).';
COMMENT ON COLUMN lake.dataset_coordinates.lon_path IS
    'Where the longitude is in the record (doc #> lon_path).';
COMMENT ON COLUMN lake.dataset_coordinates.scale IS
    'Degrees per unit of the fields: 1 for degrees, 0.0000001 for E7 integers.';
COMMENT ON COLUMN lake.dataset_coordinates.expression IS
    'The record''s point, geography(Point) or NULL, as SQL over doc: the GiST index''s expression.';
COMMENT ON COLUMN lake.dataset_coordinates.created_at IS 'When they were (last) declared.';
