-- SQL of Lake.series: the session user's records in time buckets ("-- name: <name>" blocks).

-- name: series
-- bucket_start as RFC 3339 text in UTC, as lake.similar's ts: the same JSON from the CLI and
-- the client.
SELECT to_char(bucket_start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS bucket,
       records, value
  FROM lake.series(%(dataset)s, %(bucket)s::interval, %(from_ts)s::timestamptz,
                   %(to_ts)s::timestamptz, %(field)s, %(agg)s, %(fill)s, %(timezone)s)
