-- BEFORE UPDATE / DELETE / TRUNCATE on the audit log: refused, whoever asks (its owner too).
-- Old months leave by dropping their partitions (the retention job), which the hash chain's
-- first_id records.
CREATE FUNCTION lake_internal._tg_audit_immutable()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'LK050',
        MESSAGE = format('the audit log is append-only: %s refused', TG_OP),
        HINT = 'Entries cannot be changed or removed; old months are dropped by retention.';
END
$$;
ALTER FUNCTION lake_internal._tg_audit_immutable() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._tg_audit_immutable() FROM PUBLIC;
