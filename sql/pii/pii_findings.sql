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
