-- Before-images of user data: every row version that an UPDATE, DELETE or TRUNCATE of
-- user_data.<dataset> replaced or removed, as it was (with the transaction that had written it,
-- row_xact), and the transaction that changed it (undo_xact). Written by the statement triggers of
-- every dataset (lake_internal._tg_keep_undo) from their transition tables; read by lake.rollback;
-- trimmed by lake.purge_checkpoints to what some checkpoint still needs. Versions a transaction
-- writes and changes again itself are never needed and not kept. No application role reads it. No
-- foreign key: it would add a row-level check to every UPDATE and DELETE.
CREATE TABLE lake_internal.row_undo (
    dataset      text NOT NULL,
    undo_xact    xid8 NOT NULL DEFAULT pg_current_xact_id(),
    op           text NOT NULL CHECK (op IN ('UPDATE', 'DELETE', 'TRUNCATE')),
    changed_at   timestamptz NOT NULL DEFAULT now(),
    -- The row of user_data.<dataset> as it was.
    id           bigint NOT NULL,
    user_id      text COLLATE "C",
    ts           timestamptz NOT NULL,
    doc          jsonb COMPRESSION lz4 NOT NULL,
    batch_id     uuid NOT NULL,
    ingested_at  timestamptz NOT NULL,
    pii          bytea,
    row_xact     xid8 NOT NULL
);
CREATE INDEX row_undo_dataset_xact_idx ON lake_internal.row_undo (dataset, undo_xact);
ALTER TABLE lake_internal.row_undo OWNER TO lake_owner;

COMMENT ON TABLE lake_internal.row_undo IS
    'Before-images of updated, deleted and truncated user data, for lake.rollback.';
