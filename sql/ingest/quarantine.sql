-- Records that failed validation, kept with everything needed to review them. Nothing is
-- deleted from here without a recorded decision.
CREATE TABLE lake.quarantine (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dataset         text NOT NULL REFERENCES lake.datasets (name) ON DELETE CASCADE,
    batch_id        uuid NOT NULL,
    -- Where the record came from inside its batch, e.g. "line 17" or "records[3]".
    record_ref      text,
    user_id         text,
    -- The record's time if it could be read.
    ts              timestamptz,
    -- The record as jsonb when it parsed; otherwise the exact bytes received in raw.
    doc             jsonb,
    raw             bytea,
    -- The dataset's pii_fields in clear, encrypted (doc holds masks; see lake_internal._pii_seal).
    pii             bytea,
    -- Structured reasons: [{"path": "$.lat", "rule": "maximum", "message": "..."}, ...]
    reasons         jsonb NOT NULL CHECK (jsonb_typeof(reasons) = 'array'),
    schema_version  integer,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'expired', 'released', 'corrected', 'discarded')),
    received_at     timestamptz NOT NULL DEFAULT now(),
    review_by       timestamptz NOT NULL DEFAULT now() + interval '24 hours',
    decided_at      timestamptz,
    decided_by      name,
    decision_note   text,
    -- For a released or corrected record: the batch that carried it into the dataset.
    released_batch  uuid,
    CHECK (doc IS NOT NULL OR raw IS NOT NULL),
    CHECK ((status IN ('released', 'corrected', 'discarded')) = (decided_at IS NOT NULL))
);
CREATE INDEX quarantine_dataset_status_idx ON lake.quarantine (dataset, status, review_by);
CREATE INDEX quarantine_batch_idx ON lake.quarantine (batch_id);
ALTER TABLE lake.quarantine OWNER TO lake_owner;
GRANT SELECT ON lake.quarantine TO lake_admin;

COMMENT ON TABLE lake.quarantine IS
    'Rejected records with raw payload, structured reasons, a 24 h review deadline and status.';

COMMENT ON COLUMN lake.quarantine.id IS
    'The item''s id, for lake.quarantine_release, _correct and _discard.';
COMMENT ON COLUMN lake.quarantine.dataset IS 'The dataset the record was sent to.';
COMMENT ON COLUMN lake.quarantine.batch_id IS 'The batch that brought it (lake.batches).';
COMMENT ON COLUMN lake.quarantine.record_ref IS
    'Where the record was in its batch, e.g. line 17 or records[3].';
COMMENT ON COLUMN lake.quarantine.user_id IS 'Whose record it is, if known.';
COMMENT ON COLUMN lake.quarantine.ts IS 'The record''s time, if it could be read.';
COMMENT ON COLUMN lake.quarantine.doc IS 'The record as jsonb, when it parsed.';
COMMENT ON COLUMN lake.quarantine.raw IS
    'The exact bytes received, when the record did not parse as jsonb.';
COMMENT ON COLUMN lake.quarantine.pii IS
    'The dataset''s pii_fields in clear, encrypted (doc holds masks).';
COMMENT ON COLUMN lake.quarantine.reasons IS 'Why: [{"path", "rule", "message"}, ...], at most 20.';
COMMENT ON COLUMN lake.quarantine.schema_version IS 'The schema version it was judged by.';
COMMENT ON COLUMN lake.quarantine.status IS
    'pending, expired (past review_by), released, corrected (released as a correction) or '
    'discarded.';
COMMENT ON COLUMN lake.quarantine.received_at IS 'When it was quarantined.';
COMMENT ON COLUMN lake.quarantine.review_by IS 'When a review is due (24 hours after arrival).';
COMMENT ON COLUMN lake.quarantine.decided_at IS 'When it was released, corrected or discarded.';
COMMENT ON COLUMN lake.quarantine.decided_by IS 'The database role that decided.';
COMMENT ON COLUMN lake.quarantine.decision_note IS
    'The note of a release or the reason of a discard.';
COMMENT ON COLUMN lake.quarantine.released_batch IS
    'For a released or corrected record: the batch that carried it into the dataset.';
