-- The audit log: who (database role, lake user, acting service, client address), when and what, for
-- ingest batches, changes to user data (before and after), quarantine decisions, authentication,
-- act_as, key and user changes and administration. Entries join it after their transaction commits
-- (lake.audit_pending, chained by lake.seal()). Monthly partitions (made on demand), kept 365 days. Append-only: no
-- application role may write it, and a trigger refuses UPDATE and DELETE even to its owner.
-- Tamper-evident: hash = SHA-256 of prev_hash, the entry's frame and the digest of its payload
-- (lake_internal._audit_hash); lake.verify_audit_chain() checks every link. An erasure may
-- redact the payload of the entries about the person (and only that, keeping its digest in
-- erased: lake_internal._tg_audit_immutable): the chain still verifies.
CREATE TABLE lake.audit_log (
    id           bigint NOT NULL,
    -- When the entry joined the chain (sealed, after its commit): ids and times rise together,
    -- so each month holds a run of ids and retention can drop months from the start.
    at           timestamptz NOT NULL,
    -- When it happened (the statement or call inside the transaction).
    occurred_at  timestamptz NOT NULL,
    action       text NOT NULL,
    object       text,
    db_role      name NOT NULL,
    lake_user    text COLLATE "C",
    service      text COLLATE "C",
    client_addr  inet,
    application  text,
    xact_id      xid8 NOT NULL,
    -- lz4: entries with many rows compress several times faster than with the default pglz.
    detail       jsonb COMPRESSION lz4,
    before       jsonb COMPRESSION lz4,
    after        jsonb COMPRESSION lz4,
    prev_hash    bytea NOT NULL,
    hash         bytea NOT NULL,
    -- Set when an erasure (lake.erase_user) redacted the entry: the SHA-256 of its payload as
    -- written (lake_internal._audit_payload), which the hash covers in place of the payload.
    erased       bytea,
    PRIMARY KEY (id, at)
) PARTITION BY RANGE (at);
CREATE INDEX audit_log_at_idx ON lake.audit_log (at);
ALTER TABLE lake.audit_log OWNER TO lake_owner;
GRANT SELECT ON lake.audit_log TO lake_admin, lake_auditor;

COMMENT ON TABLE lake.audit_log IS
    'Append-only, hash-chained audit log (monthly partitions, 365 days); read by administrators '
    'and auditors.';
COMMENT ON COLUMN lake.audit_log.id IS
    'Position in the hash chain: ids rise in commit order, without gaps.';
COMMENT ON COLUMN lake.audit_log.at IS
    'When the entry joined the chain: its transaction''s commit.';
COMMENT ON COLUMN lake.audit_log.occurred_at IS
    'When the audited action happened inside its transaction.';
COMMENT ON COLUMN lake.audit_log.action IS
    'What happened, e.g. batch.ingest, data.update, auth.failure, key.revoke.';
COMMENT ON COLUMN lake.audit_log.object IS
    'What it happened to: a dataset, user, key id, quarantine item...';
COMMENT ON COLUMN lake.audit_log.db_role IS 'The database role (session_user) that acted.';
COMMENT ON COLUMN lake.audit_log.lake_user IS 'The session''s lake user, if any.';
COMMENT ON COLUMN lake.audit_log.service IS 'The service acting for that user, if any.';
COMMENT ON COLUMN lake.audit_log.client_addr IS 'The client''s address (NULL over a Unix socket).';
COMMENT ON COLUMN lake.audit_log.application IS 'The client''s application_name.';
COMMENT ON COLUMN lake.audit_log.xact_id IS 'The transaction that made the entry.';
COMMENT ON COLUMN lake.audit_log.detail IS 'Details of the action (jsonb).';
COMMENT ON COLUMN lake.audit_log.before IS
    'Changed rows before the change (data.update, data.delete), else NULL.';
COMMENT ON COLUMN lake.audit_log.after IS
    'Changed rows after the change (data.update, data.restore), else NULL.';
COMMENT ON COLUMN lake.audit_log.prev_hash IS
    'hash of the previous entry (''\x'' for the first one after a purge).';
COMMENT ON COLUMN lake.audit_log.hash IS
    'SHA-256 of prev_hash and this entry; lake.verify_audit_chain() checks it.';
COMMENT ON COLUMN lake.audit_log.erased IS
    'Set when an erasure redacted the entry''s payload (object, lake_user, client_addr, '
    'application, detail, before, after): the payload''s SHA-256 as written, which the hash '
    'covers. NULL: the payload is as written.';
