-- Audit entries of transactions still running. lake_internal._audit() writes here; when the
-- transaction commits, a deferred trigger (lake_internal._tg_audit_seal) moves each entry into the
-- hash chain of lake.audit_log. The chain's lock is so taken only while a transaction commits,
-- never for its whole length (an open transaction that authenticated would otherwise hold up every
-- other audited action). Rows never outlive their transaction: a rolled-back one leaves nothing.
CREATE TABLE lake.audit_pending (
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at  timestamptz NOT NULL,
    action       text NOT NULL,
    object       text,
    db_role      name NOT NULL,
    lake_user    text COLLATE "C",
    service      text COLLATE "C",
    client_addr  inet,
    application  text,
    xact_id      xid8 NOT NULL,
    detail       jsonb COMPRESSION lz4,
    before       jsonb COMPRESSION lz4,
    after        jsonb COMPRESSION lz4
);
ALTER TABLE lake.audit_pending OWNER TO lake_owner;
