-- Set by lake.rollback for the one INSERT that puts rows back as they were, and removed right after
-- it: while a row here names the current transaction and the dataset, the validation trigger
-- (lake_internal._tg_validate) neither judges nor counts that statement's rows again and the PII
-- trigger (lake_internal._tg_pii_protect) does not seal them a second time. Only the lake's own
-- functions write it, so no application can switch those checks off (the setting lake.restoring
-- that the triggers look at first is only a cheap pre-test: setting it alone changes nothing).
CREATE TABLE lake_internal.restore_marks (
    xact_id  xid8 NOT NULL DEFAULT pg_current_xact_id(),
    dataset  text NOT NULL,
    PRIMARY KEY (xact_id, dataset)
);
ALTER TABLE lake_internal.restore_marks OWNER TO lake_owner;

COMMENT ON TABLE lake_internal.restore_marks IS
    'Marks the INSERT of a rollback, whose restored rows the triggers do not count or seal again.';
