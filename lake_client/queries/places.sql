-- SQL of lake_client.places: a dataset's coordinates, the searches near a point and within an
-- area, stay points ("-- name: <name>" blocks). Times as RFC 3339 text, as lake.similar's.

-- name: declare_coordinates
SELECT dataset, lat_path, lon_path, scale::float8 AS scale, expression
  FROM lake.declare_coordinates(%(dataset)s, %(lat_field)s, %(lon_field)s, %(scale)s)

-- name: near
SELECT id, to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS ts, distance_m,
       place_lat, place_lon, doc
  FROM lake.near(%(dataset)s, %(lat)s, %(lon)s, %(radius_m)s, %(from_ts)s, %(to_ts)s,
                 %(max_rows)s)

-- name: within
SELECT id, to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS ts, place_lat,
       place_lon, doc
  FROM lake.within(%(dataset)s, %(geojson)s, %(from_ts)s, %(to_ts)s, %(max_rows)s)

-- name: stay_points
SELECT to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS started_at,
       to_char(ended_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS ended_at,
       minutes::float8 AS minutes, lat, lon, points
  FROM lake.stay_points(%(dataset)s, %(day)s::date, %(min_minutes)s, %(radius_m)s, %(time_zone)s)

-- name: postgis_version
SELECT public.postgis_lib_version() AS version
