-- Statements of the gRPC service (lake_client.grpc_server). Each call is one transaction that
-- starts by establishing the caller's identity for that transaction only.

-- name: grpc_deadline
-- The caller's deadline (capped by the server) for every statement of this call.
SELECT set_config('statement_timeout', %(ms)s, true)

-- name: grpc_authenticate
SELECT lake.authenticate(%(api_key)s, 'transaction') AS principal

-- name: grpc_authenticate_cert
-- The client certificate the call's TLS handshake verified; the server's login is in lake_door.
SELECT lake.authenticate_peer_cert(%(serial)s, %(issuer)s, 'transaction') AS principal

-- name: grpc_identity
SELECT user_id, service, principal FROM lake.current_identity()

-- name: grpc_act_as
SELECT lake.act_as(%(user_id)s, 'transaction')

-- name: grpc_query
-- {dataset} is an identifier (psycopg.sql). Row-level security limits it to the caller's rows;
-- the user_id condition says so again, for a server that logs in as a role that bypasses it.
SELECT id, ts, doc::text AS doc, user_id
  FROM user_data.{dataset}
 WHERE user_id = (SELECT lake.current_user_id())
   AND ts >= coalesce(%(from_time)s::timestamptz, '-infinity')
   AND ts < coalesce(%(to_time)s::timestamptz, 'infinity')
   AND (ts, id) > (coalesce(%(after_ts)s::timestamptz, '-infinity'), coalesce(%(after_id)s::bigint, -1))
 ORDER BY ts, id
 LIMIT %(limit)s

-- name: grpc_changes
SELECT id, dataset, user_id, record_id, op, before::text AS before, after::text AS after,
       source::text AS source, ts_ms
  FROM lake.user_changes(%(since)s, %(max_rows)s)

-- name: grpc_quarantine_item
SELECT id, dataset, user_id, status, reasons::text AS reasons, doc::text AS doc, raw
  FROM lake.quarantine
 WHERE id = %(id)s
