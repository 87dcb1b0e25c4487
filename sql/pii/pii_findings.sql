-- Where stored records hold personal identifiers, found by lake_internal._pii_scan (PL/Python,
-- plpython/lake_pii) as records are stored: dataset, record (the id in user_data.<dataset>), its
-- owner, the JSON path and the kind. Never the value.
CREATE TABLE lake.pii_findings (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dataset    text NOT NULL REFERENCES lake.datasets (name) ON DELETE CASCADE,
    record_id  bigint NOT NULL,
    user_id    text COLLATE "C",
    path       text NOT NULL,
    kind       text NOT NULL CHECK (kind IN ('email', 'phone', 'payment_card', 'iban',
                                             'ip_address', 'national_id')),
    found_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pii_findings_record_idx ON lake.pii_findings (dataset, record_id);
ALTER TABLE lake.pii_findings OWNER TO lake_owner;
GRANT SELECT ON lake.pii_findings TO lake_admin, lake_auditor;

COMMENT ON TABLE lake.pii_findings IS
    'Where stored records hold personal identifiers: path and kind, never the value.';
COMMENT ON COLUMN lake.pii_findings.id IS 'The finding''s id.';
COMMENT ON COLUMN lake.pii_findings.dataset IS 'The dataset of the record.';
COMMENT ON COLUMN lake.pii_findings.record_id IS 'The record''s id in user_data.<dataset>.';
COMMENT ON COLUMN lake.pii_findings.user_id IS 'The record''s owner.';
COMMENT ON COLUMN lake.pii_findings.path IS
    'JSON path of the value within the record, e.g. $.note.';
COMMENT ON COLUMN lake.pii_findings.kind IS
    'email, phone, payment_card, iban, ip_address or national_id.';
COMMENT ON COLUMN lake.pii_findings.found_at IS 'When it was found.';
