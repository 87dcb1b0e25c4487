-- The head of the audit log's hash chain: the last entry's id, hash and time.
-- Only the sealer (lake_internal._seal_audit, one at a time) moves it, after the writers' commits,
-- so the chain stays linear (ids without gaps, each entry linked to the one before) and no writer
-- ever locks it; a rolled-back transaction leaves no trace. first_id is the
-- oldest id that must still exist (lake.purge_audit_log advances it when it drops old months).
CREATE TABLE lake_internal.audit_head (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    last_id    bigint NOT NULL,
    last_hash  bytea NOT NULL,
    last_at    timestamptz NOT NULL DEFAULT '-infinity',
    first_id   bigint NOT NULL
);
INSERT INTO lake_internal.audit_head (last_id, last_hash, first_id) VALUES (0, '\x'::bytea, 1);
ALTER TABLE lake_internal.audit_head OWNER TO lake_owner;

COMMENT ON TABLE lake_internal.audit_head IS
    'Head of the audit hash chain (last id, hash); its row is the lock the seals take at commit.';
