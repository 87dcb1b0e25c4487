-- One row while a transaction commits: lake_internal._require_commit() inserts it, which queues the
-- probe trigger (at_commit) whose mode tells whether the lake's commit-time triggers are still
-- deferred, and the probe deletes it when it runs. While it exists, later seals of the same commit
-- need not probe again.
CREATE UNLOGGED TABLE lake.seal_probe (
    xact_id xid8 PRIMARY KEY DEFAULT pg_current_xact_id()
);
ALTER TABLE lake.seal_probe OWNER TO lake_owner;

COMMENT ON TABLE lake.seal_probe IS
    'Commit-time probe: tells the seals whether the at_commit triggers are still deferred.';
COMMENT ON COLUMN lake.seal_probe.xact_id IS
    'The committing transaction that inserted the probe row.';
