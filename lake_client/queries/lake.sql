-- SQL that lake_client sends, one named block each ("-- name: <name>"), loaded by
-- lake_client.queries. Parameters use psycopg's %(name)s style.

-- name: session_setup
-- A large work_mem keeps the validation trigger's transition table of a whole batch in memory.
SELECT set_config('work_mem', %(work_mem)s, false), set_config('application_name', %(app)s, false)

-- name: act_as
SELECT lake.act_as(%(user_id)s, %(scope)s)

-- name: current_user_id
SELECT lake.current_user_id()

-- name: authenticate
-- NULL when the key is refused (the database records the attempt and says why in its audit log).
SELECT lake.authenticate(%(api_key)s, %(scope)s) AS principal

-- name: authenticate_cert
-- The identity comes from this connection's TLS client certificate; NULL when refused.
SELECT lake.authenticate_cert(%(scope)s) AS service

-- name: issue_service_cert
SELECT serial::text AS serial, not_after, certificate, private_key, ca_certificate
  FROM lake.issue_service_cert(%(service)s, %(scopes)s)

-- name: renew_service_cert
SELECT serial::text AS serial, service, not_after, certificate, private_key, ca_certificate
  FROM lake.renew_service_cert()

-- name: revoke_service_cert
SELECT lake.revoke_service_cert(%(which)s) AS revoked

-- name: service_certs
SELECT serial::text AS serial, service, scopes, not_before, not_after, issued_at, issued_by,
       renewed_from::text AS renewed_from, revoked_at,
       CASE WHEN revoked_at IS NOT NULL THEN 'revoked'
            WHEN not_after <= now() THEN 'expired' ELSE 'active' END AS state
  FROM lake.service_certs
 WHERE %(service)s::text IS NULL OR service = %(service)s
 ORDER BY service, not_after

-- name: identity_token
-- A signed token of this session's identity, for reads on a hot standby (LAKE_READ_DSN).
SELECT token, expires_at FROM lake.identity_token(%(ttl)s::interval)

-- name: use_identity_token
-- On the standby, for this transaction only (as the primary's identity): lake.token_identity()
-- checks it for current_user_id() and the RLS policies.
SELECT set_config('lake.identity_token', %(token)s, true)

-- name: current_identity
SELECT user_id, service, principal, key_id, scopes FROM lake.current_identity()

-- name: create_user
SELECT * FROM lake.create_user(%(id)s, %(display_name)s, %(kind)s)

-- name: users
SELECT u.id, u.kind, u.display_name, u.created_at, u.disabled_at,
       (SELECT count(*) FROM lake.api_keys k
         WHERE k.principal = u.id AND k.revoked_at IS NULL
           AND (k.expires_at IS NULL OR k.expires_at > now())) AS active_keys
  FROM lake.users u
 ORDER BY u.id

-- name: set_user_enabled
SELECT * FROM lake.set_user_enabled(%(id)s, %(enabled)s)

-- name: create_api_key
SELECT * FROM lake.create_api_key(%(principal)s, %(scopes)s, %(expires_in)s, %(label)s)

-- name: api_keys
SELECT id, principal, scopes, label, created_at, expires_at, revoked_at, last_used_at,
       replaced_by,
       CASE WHEN revoked_at IS NOT NULL THEN 'revoked'
            WHEN expires_at <= now() THEN 'expired' ELSE 'active' END AS state
  FROM lake.api_keys
 WHERE %(principal)s::text IS NULL OR principal = %(principal)s
 ORDER BY principal, created_at

-- name: rotate_api_key
SELECT * FROM lake.rotate_api_key(%(key_id)s)

-- name: revoke_api_key
SELECT lake.revoke_api_key(%(key_id)s)

-- name: link_oauth
SELECT lake.link_oauth(%(provider)s, %(subject)s, %(user_id)s, %(scopes)s)

-- name: pii_reveal
SELECT id, user_id, doc FROM lake.pii_reveal(%(dataset)s, %(ids)s)

-- name: pii_findings
SELECT dataset, record_id, user_id, path, kind, found_at
  FROM lake.pii_findings
 WHERE %(dataset)s::text IS NULL OR dataset = %(dataset)s
 ORDER BY id DESC
 LIMIT %(limit)s

-- name: verify_audit_chain
SELECT * FROM lake.verify_audit_chain()

-- name: audit_log
SELECT id, at, action, object, db_role, lake_user, service, client_addr::text AS client_addr,
       detail
  FROM lake.audit_log
 WHERE %(action)s::text IS NULL OR action = %(action)s
 ORDER BY id DESC
 LIMIT %(limit)s

-- name: audit_chain_head
-- The chain's newest sealed entry: what lake_client.witness signs.
SELECT id, hash, at FROM lake.audit_log ORDER BY id DESC LIMIT 1

-- name: audit_chain_at
SELECT id, hash FROM lake.audit_log WHERE id = ANY (%(ids)s::bigint[])

-- name: audit_chain_oldest
-- The oldest entry kept (retention drops whole months from the start).
SELECT min(id) FROM lake.audit_log

-- name: create_dataset
SELECT * FROM lake.create_dataset(%(name)s, %(json_schema)s, %(options)s)

-- name: evolve_schema
SELECT lake.evolve_schema(%(dataset)s, %(json_schema)s, %(dry_run)s) AS report

-- name: drop_dataset
SELECT lake.drop_dataset(%(dataset)s, archive => %(archive)s, force => %(force)s) AS report

-- name: datasets
SELECT d.name, d.schema_version, d.time_field, d.time_format, d.retention::text AS retention,
       d.premake, d.partitions_from, d.partitions_to, d.description, d.created_at,
       d.source_format, s.json_schema, s.predicate IS NOT NULL AS compiled
  FROM lake.datasets AS d
  JOIN lake.dataset_schemas AS s ON s.dataset = d.name AND s.version = d.schema_version
 ORDER BY d.name

-- name: dataset_schema
-- The JSON Schema of a dataset's current version (no row: no such dataset); `lake ingest` types
-- CSV cells by it.
SELECT s.json_schema
  FROM lake.datasets AS d
  JOIN lake.dataset_schemas AS s ON s.dataset = d.name AND s.version = d.schema_version
 WHERE d.name = %(dataset)s

-- name: dataset_source_formats
-- Every dataset that declares a source format, with how a file of it is read and which zip
-- members are such files: `lake ingest` reads by them and sends each member of a Takeout zip to
-- the dataset whose format it is.
SELECT d.name AS dataset, f.name AS source_format, f.reader, f.member_pattern
  FROM lake.datasets AS d
  JOIN lake.source_formats() AS f ON f.name = d.source_format
 ORDER BY d.name

-- name: ingest_sql
SELECT * FROM lake.ingest(%(dataset)s, %(records)s, %(batch_id)s, %(for_user)s, %(origin)s)

-- name: server_cores
-- How many sessions a bulk load uses unless told.
SELECT lake.server_cores() AS cores

-- name: begin_batch
SELECT is_new, time_field, time_format, max_record_bytes, received, accepted, quarantined,
       archived
  FROM lake.begin_batch(%(dataset)s, %(batch_id)s, %(checksum)s, %(origin)s)

-- name: ingest_raw
-- The raw bytes go in binary (%b): no hex text of them, which would be twice their size.
SELECT lake.ingest_raw(%(dataset)s, %(batch_id)s, %(refs)s, %(raws)b)

-- name: raw_table_missing
-- A large record's bytes are streamed with COPY into this session's table pg_temp.lake_raw
-- (made once a session, emptied at every commit) instead of being sent as one parameter, which
-- the driver would hold twice more.
SELECT to_regclass('pg_temp.lake_raw') IS NULL AS missing

-- name: raw_table
CREATE TEMP TABLE lake_raw (raw bytea NOT NULL) ON COMMIT DELETE ROWS

-- name: raw_copy
COPY pg_temp.lake_raw (raw) FROM STDIN (FORMAT binary)

-- name: ingest_raw_copied
WITH r AS (DELETE FROM pg_temp.lake_raw RETURNING raw)
SELECT lake.ingest_raw(%(dataset)s, %(batch_id)s, ARRAY[%(ref)s::text], ARRAY(SELECT raw FROM r))

-- name: end_batch
SELECT * FROM lake.end_batch(%(batch_id)s, %(sent)s)

-- name: batch_reasons
SELECT * FROM lake.batch_reasons(%(batch_ids)s)

-- name: quarantine
SELECT id, dataset, batch_id, record_ref, user_id, ts, doc, raw, reasons, status,
       received_at, review_by, decided_at, decided_by, decision_note
  FROM lake.quarantine
 WHERE (%(dataset)s::text IS NULL OR dataset = %(dataset)s)
   AND (%(status)s::text IS NULL OR status = %(status)s)
 ORDER BY id
 LIMIT %(limit)s

-- name: quarantine_release
SELECT * FROM lake.quarantine_release(%(id)s, %(corrected)s, %(note)s)

-- name: quarantine_discard
SELECT * FROM lake.quarantine_discard(%(id)s, %(reason)s)

-- name: quarantine_decide
SELECT lake.quarantine_decide(%(action)s, %(dataset)s, %(batch_id)s, %(user_id)s, %(rule)s,
                              %(received_from)s, %(received_before)s, %(dry_run)s, %(note)s,
                              %(all_items)s) AS report

-- name: quarantine_correct
SELECT lake.quarantine_correct(%(id)s, %(corrected)s, %(note)s) AS outcome

-- name: quarantine_pending
-- The items awaiting a decision that match the filters, as lake quarantine export writes them.
SELECT id, dataset, batch_id, record_ref, user_id, ts, reasons, doc, raw
  FROM lake.quarantine_pending(%(dataset)s, %(batch_id)s, %(user_id)s, %(rule)s,
                               %(received_from)s, %(received_before)s)

-- name: checkpoint
SELECT id, dataset, label, created_at, keep_for FROM lake.checkpoint(%(dataset)s, %(label)s)

-- name: checkpoints
-- Newest first; can_rollback: one of the last 5 (lake.rollback_targets).
SELECT c.id, c.label, c.created_at, c.created_at + c.keep_for AS expires_at, c.db_role,
       c.lake_user, c.id IN (SELECT t.id FROM lake.rollback_targets(%(dataset)s) AS t)
           AS can_rollback
  FROM lake.checkpoints AS c
 WHERE c.dataset = %(dataset)s
 ORDER BY c.id DESC

-- name: rollback
SELECT before_checkpoint, rows_deleted, rows_restored, rows_not_restored
  FROM lake.rollback(%(dataset)s, %(checkpoint)s)

-- name: partitions
SELECT dataset, partition, kind, range_from, range_to, rows_estimate, bytes, tier
  FROM lake.partitions
 WHERE %(dataset)s::text IS NULL OR dataset = %(dataset)s
 ORDER BY dataset, range_from NULLS FIRST

-- name: archives
SELECT id, dataset, to_char(month AT TIME ZONE 'UTC', 'YYYY-MM') AS month, rows, bytes, status,
       created_at, dropped_at, restored_at, hold_until, path, error
  FROM lake.archives
 WHERE %(dataset)s::text IS NULL OR dataset = %(dataset)s
 ORDER BY dataset, month, id

-- name: restore_partition
SELECT id, dataset, to_char(month AT TIME ZONE 'UTC', 'YYYY-MM') AS month, rows, hold_until, path
  FROM lake.restore_partition(%(dataset)s, %(month)s::timestamptz)

-- name: exact_counts
SELECT tableoid::regclass::text AS partition, count(*) AS n
  FROM user_data.{dataset}
 GROUP BY 1 ORDER BY 1

-- name: copy_rows
-- Into the dataset's COPY inbox: PostgreSQL refuses COPY FROM into a table under row-level
-- security. Binary format (see lake_client.client): the server reads no text to scan, unescape or
-- parse but the documents. ts is NULL for a record whose time cannot be read; ref names the
-- record in the quarantine. {dataset} is filled in with psycopg.sql.Identifier.
COPY inbox.{dataset} (ts, doc, batch_id, ref) FROM STDIN (FORMAT binary)

-- name: jobs
SELECT j.job, j.schedule, j.kind, j.scheduled, j.active, j.last_start, j.last_end, j.last_status,
       j.last_error, j.last_details, j.failures_24h, j.description, j.command
  FROM lake.jobs AS j
  JOIN lake.job_defs AS d ON d.name = j.job
 ORDER BY d.position

-- name: job_runs
SELECT id, job, job_now, started_at, finished_at, status, error, details
  FROM lake.job_runs
 WHERE %(job)s::text IS NULL OR job = %(job)s
 ORDER BY id DESC
 LIMIT %(limit)s

-- name: job_def
SELECT name, kind, command FROM lake.job_defs WHERE name = %(job)s

-- name: run_maintenance
CALL lake.run_maintenance(%(job)s, %(now)s::timestamptz)

-- name: metrics_jobs
SELECT job, scheduled, last_status, extract(epoch FROM last_start)::float8, failures_24h
  FROM lake.jobs

-- name: metrics_quarantine
SELECT dataset, status, count(*) FROM lake.quarantine GROUP BY dataset, status

-- name: metrics_batches
SELECT dataset, sum(received), sum(accepted), sum(archived), sum(quarantined)
  FROM lake.batches GROUP BY dataset

-- name: metrics_partitions
SELECT dataset, coalesce(tier, 'overflow'), count(*), coalesce(sum(bytes), 0)
  FROM lake.partitions
 GROUP BY 1, 2

-- name: metrics_bridges
-- Per bridge: changes not yet forwarded, the age of the oldest of them, the last advance.
SELECT c.name,
       greatest(coalesce((SELECT max(d.id) FROM lake.data_changes AS d), 0) - c.last_id, 0),
       coalesce(extract(epoch FROM now() - (SELECT d.created_at FROM lake.data_changes AS d
                                              WHERE d.id > c.last_id ORDER BY d.id LIMIT 1)),
                0)::float8,
       extract(epoch FROM c.updated_at)::float8
  FROM lake.bridge_cursors AS c

-- name: seal
-- The sealer (one at a time; a second caller gets NULLs at once): committed audit entries into
-- the chain, committed changes into lake.data_changes.
SELECT audit_entries, changes, last_change_id FROM lake.seal()

-- name: arm_sealer
SELECT lake.arm_sealer(%(armed)s)

-- name: metrics_seal
SELECT log, pending, oldest_age_s FROM lake.seal_backlog()

-- name: metrics_notify_queue
-- The fraction of PostgreSQL's notification queue (8 GB) in use, cluster-wide.
SELECT pg_notification_queue_usage()

-- name: changes
SELECT id, xact_id::text AS xact_id, lsn::text AS lsn, dataset, user_id, record_id, op, before,
       after, source, ts_ms
  FROM lake.data_changes
 WHERE id > %(since)s
 ORDER BY id
 LIMIT %(limit)s

-- name: bridge_changes
-- The changes after `since` for the bridge: at most `limit`, and no more than fit in `bytes`
-- (their before and after as stored), but always the first; upto is the running size (at least
-- `bytes` when the budget cut the batch). The running sum is computed as the index is read, so
-- a long backlog is not summed beyond the batch. kind is source's, for the messages.
SELECT b.id, b.xact_id, b.lsn, b.dataset, b.user_id, b.record_id, b.op, b.before, b.after,
       b.source, b.ts_ms, b.kind, b.upto
  FROM (SELECT c.id, c.xact_id::text AS xact_id, c.lsn::text AS lsn, c.dataset, c.user_id,
               c.record_id, c.op, c.before, c.after, c.source, c.ts_ms,
               c.source ->> 'kind' AS kind,
               sum(coalesce(pg_column_size(c.before), 0) + coalesce(pg_column_size(c.after), 0))
                   OVER (ORDER BY c.id ROWS UNBOUNDED PRECEDING) AS upto,
               coalesce(pg_column_size(c.before), 0) + coalesce(pg_column_size(c.after), 0)
                   AS size
          FROM lake.data_changes AS c
         WHERE c.id > %(since)s
         ORDER BY c.id
         LIMIT %(limit)s) AS b
 WHERE b.upto - b.size < %(bytes)s
 ORDER BY b.id

-- name: lake_identity
-- This database, across restarts; another after it is re-created or restored elsewhere.
SELECT (SELECT system_identifier FROM pg_control_system())::text || ':' || d.oid AS lake
  FROM pg_database AS d
 WHERE d.datname = current_database()

-- name: last_change
SELECT coalesce(max(id), 0) AS last FROM lake.data_changes

-- name: recent_namespaces
-- The namespaces (dataset, user) of the changes committed in the `ms` milliseconds up to the
-- change `upto`, among the `most` changes before it (ids follow commit order).
SELECT DISTINCT c.dataset, c.user_id
  FROM lake.data_changes AS c
 WHERE c.id <= %(upto)s AND c.id > %(upto)s - %(most)s
   AND c.ts_ms >= (SELECT u.ts_ms FROM lake.data_changes AS u WHERE u.id = %(upto)s) - %(ms)s

-- name: bridge_advance
SELECT lake.bridge_advance(%(name)s, %(last_id)s, %(batch_seconds)s) AS last_id

-- name: export_user
-- Everything the lake holds about a person, part by part (lake_client.export reads it through a
-- server-side cursor).
SELECT part, line FROM lake.export_user(%(user_id)s)

-- name: request_erasure
SELECT lake.request_erasure(%(user_id)s, %(reason)s) AS erasure_id

-- name: erase_user
SELECT lake.erase_user(%(user_id)s, %(reason)s) AS report

-- name: finish_erasure
SELECT lake.finish_erasure(%(erasure_id)s) AS report

-- name: erasure_subject
-- Whom an open erasure is about (the bridge: the change event names no one); NULL once done.
SELECT user_id FROM lake.erasure_requests WHERE id = %(erasure_id)s

-- name: metrics_quality
SELECT dataset, check_type, time_window, score FROM lake.quality_scores

-- name: metrics_storage
SELECT storage_type, schema, bytes FROM lake.storage_usage()

-- name: metrics_wal
-- The WAL files' bytes (pg_ls_waldir needs pg_monitor) and the WAL written since stats reset.
SELECT (SELECT coalesce(sum(size), 0) FROM pg_ls_waldir())::float8, wal_bytes::float8
  FROM pg_stat_wal

-- name: metrics_durations
SELECT operation, status, bounds, buckets, count, sum FROM lake.op_duration_histogram

-- name: metrics_latency
SELECT tier, operation, seconds FROM lake.storage_latency()

-- name: metrics_cache_hits
-- PostgreSQL's shared buffers: blocks found there / blocks asked for, in this database.
SELECT blks_hit::float8 / nullif(blks_hit + blks_read, 0)
  FROM pg_stat_database WHERE datname = current_database()

-- name: metrics_job_outcomes
SELECT job, status, runs FROM lake_internal.job_outcomes

-- name: metrics_audit_chain
-- The verdict of the newest finished run of the verify_audit job, and when it finished (no row
-- before the first run).
SELECT (r.details ->> 'ok')::boolean, extract(epoch FROM r.finished_at)::float8
  FROM lake.job_runs AS r
 WHERE r.job = 'verify_audit' AND r.status IN ('ok', 'failed') AND r.details ? 'ok'
 ORDER BY r.id DESC
 LIMIT 1

-- name: metrics_backups
-- The newest backup's end and size, and how many the repository keeps (lake.backups() runs
-- pgbackrest info; no rows' worth of figures before the first backup).
SELECT extract(epoch FROM max(stopped_at))::float8,
       (array_agg(repository_bytes ORDER BY stopped_at DESC))[1]::float8,
       count(*)::float8
  FROM lake.backups()

-- name: metrics_build
SELECT current_setting('server_version')

-- name: authenticate_oidc
-- NULL when the token is refused (the audit log says why; the warning's hint names a key refresh).
SELECT lake.authenticate_oidc(%(token)s, %(nonce)s, %(scope)s) AS user_id

-- name: set_oidc_provider
SELECT name, issuer, audiences, fetched_at,
       (SELECT count(*) FROM jsonb_array_elements(p.jwks -> 'keys')) AS keys
  FROM lake.set_oidc_provider(%(name)s, %(issuer)s, %(audiences)s, %(jwks)s) AS p

-- name: oidc_providers
SELECT name, issuer, audiences, fetched_at,
       (SELECT count(*) FROM jsonb_array_elements(p.jwks -> 'keys')) AS keys
  FROM lake.oidc_providers AS p
 WHERE %(name)s::text IS NULL OR p.name = %(name)s
 ORDER BY name

-- name: entry_database_exists
-- lake_client.entrypoint: whether the lake's database exists (asked of the "postgres" one).
SELECT 1 FROM pg_database WHERE datname = %(name)s

-- name: entry_create_database
-- {database} is an identifier (psycopg.sql).
CREATE DATABASE {database}

-- name: entry_migrate_lock
-- One container migrates at a time; the others wait, then find the schema current. The key is
-- the text's hash, the same in every container.
SELECT pg_advisory_lock(hashtext('datapunk-lake migrate'))
