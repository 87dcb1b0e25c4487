-- One row per running transaction that captured changes: its insertion queues the deferred
-- trigger (at_commit) that seals them at commit, once per transaction.
CREATE UNLOGGED TABLE lake.change_xacts (
    xact_id xid8 PRIMARY KEY DEFAULT pg_current_xact_id()
);
ALTER TABLE lake.change_xacts OWNER TO lake_owner;

COMMENT ON TABLE lake.change_xacts IS
    'Running transactions that captured changes; each row queues the seal at commit.';
COMMENT ON COLUMN lake.change_xacts.xact_id IS
    'A running transaction that captured changes; its commit seals them.';
