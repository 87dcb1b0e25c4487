-- BEFORE UPDATE / DELETE / TRUNCATE on the audit log: refused, whoever asks (its owner too),
-- but for one kind of UPDATE: an erasure's redaction (lake.erase_user), which may change only the
-- payload (object, lake_user, client_addr, application, detail, before, after) and must record in
-- `erased` the digest of the payload as written (as it was before any earlier redaction), which
-- the hash covers in its place: the frame and the chain stay as they were and still verify.
-- Old months leave by dropping their partitions (the retention job), which the hash chain's
-- first_id records.
CREATE FUNCTION lake_internal._tg_audit_immutable()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND TG_LEVEL = 'ROW'
       AND (NEW.id, NEW.at, NEW.occurred_at, NEW.action, NEW.db_role, NEW.service, NEW.xact_id,
            NEW.prev_hash, NEW.hash)
           IS NOT DISTINCT FROM
           (OLD.id, OLD.at, OLD.occurred_at, OLD.action, OLD.db_role, OLD.service, OLD.xact_id,
            OLD.prev_hash, OLD.hash)
       AND NEW.erased IS NOT DISTINCT FROM
           coalesce(OLD.erased, lake_internal._audit_payload(OLD)) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION USING ERRCODE = 'LK050',
        MESSAGE = format('the audit log is append-only: %s refused', TG_OP),
        HINT = 'Entries cannot be changed or removed; old months are dropped by retention, '
               'and an erasure only redacts the payload of the entries about the person.';
END
$$;
ALTER FUNCTION lake_internal._tg_audit_immutable() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._tg_audit_immutable() FROM PUBLIC;
