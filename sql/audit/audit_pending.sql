-- Audit entries not yet in the chain. lake_internal._audit() appends here and locks nothing shared,
-- so no writer waits on another at commit; the sealer (lake.seal(), lake_internal._seal_audit)
-- moves the committed entries into the hash chain of lake.audit_log in batches, in seq order. A
-- rolled-back transaction's entries never commit, so never reach the chain. lake.verify_audit_chain
-- reports how many wait and since when.
CREATE TABLE lake.audit_pending (
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at  timestamptz NOT NULL,
    action       text NOT NULL,
    object       text,
    db_role      name NOT NULL,
    lake_user    text COLLATE "C",
    service      text COLLATE "C",
    client_addr  inet,
    application  text,
    xact_id      xid8 NOT NULL,
    detail       jsonb COMPRESSION lz4,
    before       jsonb COMPRESSION lz4,
    after        jsonb COMPRESSION lz4
);
-- A queue: every row is deleted soon after it is written. Vacuumed after every 1 000 dead rows,
-- not a fraction of the table, so the sealer's scans stay short.
ALTER TABLE lake.audit_pending
    SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000);
ALTER TABLE lake.audit_pending OWNER TO lake_owner;

COMMENT ON TABLE lake.audit_pending IS
    'Audit entries waiting for the sealer (lake.seal()), which chains the committed ones into lake.audit_log.';
COMMENT ON COLUMN lake.audit_pending.seq IS 'Order of the entries within their transaction.';
COMMENT ON COLUMN lake.audit_pending.occurred_at IS 'When the audited action happened.';
COMMENT ON COLUMN lake.audit_pending.action IS 'As lake.audit_log.action.';
COMMENT ON COLUMN lake.audit_pending.object IS 'As lake.audit_log.object.';
COMMENT ON COLUMN lake.audit_pending.db_role IS 'As lake.audit_log.db_role.';
COMMENT ON COLUMN lake.audit_pending.lake_user IS 'As lake.audit_log.lake_user.';
COMMENT ON COLUMN lake.audit_pending.service IS 'As lake.audit_log.service.';
COMMENT ON COLUMN lake.audit_pending.client_addr IS 'As lake.audit_log.client_addr.';
COMMENT ON COLUMN lake.audit_pending.application IS 'As lake.audit_log.application.';
COMMENT ON COLUMN lake.audit_pending.xact_id IS
    'The transaction whose commit seals the entry into lake.audit_log.';
COMMENT ON COLUMN lake.audit_pending.detail IS 'As lake.audit_log.detail.';
COMMENT ON COLUMN lake.audit_pending.before IS 'As lake.audit_log.before.';
COMMENT ON COLUMN lake.audit_pending.after IS 'As lake.audit_log.after.';
