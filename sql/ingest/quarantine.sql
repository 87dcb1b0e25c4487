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
                    CHECK (status IN ('pending', 'expired', 'released', 'discarded')),
    received_at     timestamptz NOT NULL DEFAULT now(),
    review_by       timestamptz NOT NULL DEFAULT now() + interval '24 hours',
    decided_at      timestamptz,
    decided_by      name,
    decision_note   text,
    -- For a released record: the batch that carried it into the dataset.
    released_batch  uuid,
    CHECK (doc IS NOT NULL OR raw IS NOT NULL),
    CHECK ((status IN ('released', 'discarded')) = (decided_at IS NOT NULL))
);
CREATE INDEX quarantine_dataset_status_idx ON lake.quarantine (dataset, status, review_by);
CREATE INDEX quarantine_batch_idx ON lake.quarantine (batch_id);
ALTER TABLE lake.quarantine OWNER TO lake_owner;
GRANT SELECT ON lake.quarantine TO lake_admin;

COMMENT ON TABLE lake.quarantine IS
    'Rejected records with raw payload, structured reasons, a 24 h review deadline and status.';
