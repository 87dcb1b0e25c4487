-- Recovery points (lake.checkpoint, the hourly job, and lake.rollback before it changes anything).
-- A checkpoint is the state of its dataset that other transactions had committed when it was
-- taken: every row version whose writing transaction (user_data.<name>.xact_id) is visible in
-- `snapshot` and is not the checkpoint's own transaction. lake.rollback returns the dataset to
-- it; lake.purge_checkpoints drops checkpoints after keep_for and the undo rows no checkpoint
-- needs any more.
CREATE TABLE lake.checkpoints (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dataset     text NOT NULL REFERENCES lake.datasets (name) ON DELETE CASCADE,
    -- Free text: 'manual', 'hourly', 'before rollback to #12', ...
    label       text NOT NULL CHECK (length(label) BETWEEN 1 AND 200),
    -- pg_current_snapshot() once the checkpoint held its lock (see lake.checkpoint).
    snapshot    pg_snapshot NOT NULL,
    -- The checkpoint's own transaction: its changes come after the checkpoint (a rollback takes
    -- its checkpoint in the transaction that then changes the rows).
    xact_id     xid8 NOT NULL DEFAULT pg_current_xact_id(),
    -- The cluster whose transaction ids the snapshot counts (pg_control_system()): after a dump
    -- restored elsewhere, or an upgrade, they mean nothing and lake.rollback refuses it.
    system_id   bigint NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- How long lake.purge_checkpoints keeps it (24 hours unless the caller says otherwise).
    keep_for    interval NOT NULL DEFAULT '24 hours' CHECK (keep_for > '0'),
    db_role     name NOT NULL DEFAULT session_user,
    lake_user   text
);
CREATE INDEX checkpoints_dataset_idx ON lake.checkpoints (dataset, id);
ALTER TABLE lake.checkpoints OWNER TO lake_owner;
GRANT SELECT ON lake.checkpoints TO lake_admin;

COMMENT ON TABLE lake.checkpoints IS
    'Recovery points of datasets; lake.rollback returns a dataset to one of its last 5.';

COMMENT ON COLUMN lake.checkpoints.id IS
    'The checkpoint''s number, for lake.rollback(dataset, checkpoint).';
COMMENT ON COLUMN lake.checkpoints.dataset IS 'The dataset it is a recovery point of.';
COMMENT ON COLUMN lake.checkpoints.label IS
    'Free text: ''manual'', ''hourly'', ''before rollback to #12''...';
COMMENT ON COLUMN lake.checkpoints.snapshot IS
    'pg_current_snapshot() once the checkpoint held its lock.';
COMMENT ON COLUMN lake.checkpoints.xact_id IS
    'The checkpoint''s own transaction, whose changes come after it.';
COMMENT ON COLUMN lake.checkpoints.system_id IS
    'The cluster whose transaction ids the snapshot counts (pg_control_system()).';
COMMENT ON COLUMN lake.checkpoints.created_at IS 'When the checkpoint was taken.';
COMMENT ON COLUMN lake.checkpoints.keep_for IS
    'How long lake.purge_checkpoints keeps it (24 hours by default).';
COMMENT ON COLUMN lake.checkpoints.db_role IS 'The database role that took it.';
COMMENT ON COLUMN lake.checkpoints.lake_user IS
    'The session''s lake user when it was taken, if any.';
