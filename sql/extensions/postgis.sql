-- PostGIS: the places of location datasets (lake.declare_coordinates, lake.near, lake.within,
-- lake.stay_points). 3.4 or newer: a database made under an older library (Debian 12's 3.3.2,
-- before docker/setup-debian.sh built 3.5) is brought up to the installed one here.
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS postgis SCHEMA public;
    IF (SELECT string_to_array(split_part(extversion, 'dev', 1), '.')::int[] < '{3,4}'
          FROM pg_extension WHERE extname = 'postgis') THEN
        ALTER EXTENSION postgis UPDATE;
    END IF;
    IF (SELECT string_to_array(split_part(extversion, 'dev', 1), '.')::int[] < '{3,4}'
          FROM pg_extension WHERE extname = 'postgis') THEN
        RAISE EXCEPTION 'PostGIS 3.4 or newer is required; this server has %',
            (SELECT default_version FROM pg_available_extensions WHERE name = 'postgis')
            USING HINT = 'Run `make system` (sudo docker/setup-debian.sh): it builds PostGIS 3.5 '
                         'on Debian 12.';
    END IF;
END
$$;
