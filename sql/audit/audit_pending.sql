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
