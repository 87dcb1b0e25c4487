-- Changes of transactions still running: lake_internal._seal_changes moves them to
-- lake.data_changes at commit, in order (seq). Unlogged: its rows never outlive their transaction.
CREATE UNLOGGED TABLE lake_internal.change_pending (
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
CREATE INDEX change_pending_xact_idx ON lake_internal.change_pending (xact_id);
ALTER TABLE lake_internal.change_pending OWNER TO lake_owner;

COMMENT ON TABLE lake_internal.change_pending IS
    'Captured changes of running transactions, sealed into lake.data_changes at commit.';
