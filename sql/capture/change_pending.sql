-- Changes waiting to be numbered: writers append here (lake_internal._tg_capture, batch events) and
-- lock nothing shared; lake.seal() moves the committed ones into lake.data_changes in batches, in
-- seq order, and deletes them. A rolled-back transaction's rows never commit, so never reach it.
-- Logged: committed changes wait here until sealed, and must survive a crash and a failover.
CREATE TABLE lake_internal.change_pending (
    seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    xact_id    xid8 NOT NULL DEFAULT pg_current_xact_id(),
    dataset    text NOT NULL,
    user_id    text,
    record_id  bigint,
    op         text NOT NULL,
    before     jsonb,
    after      jsonb,
    source     jsonb NOT NULL
);
-- A queue: every row is deleted soon after it is written. Vacuumed after every 1 000 dead rows,
-- not a fraction of the table, so the sealer's scans stay short.
ALTER TABLE lake_internal.change_pending
    SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000);
ALTER TABLE lake_internal.change_pending OWNER TO lake_owner;

COMMENT ON TABLE lake_internal.change_pending IS
    'Captured changes of running transactions, sealed into lake.data_changes at commit.';
