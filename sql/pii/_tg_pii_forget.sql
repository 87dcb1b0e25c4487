-- AFTER DELETE / TRUNCATE statement trigger of a scanned dataset: findings go with their records.
CREATE FUNCTION lake_internal._tg_pii_forget()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM lake.pii_findings AS f WHERE f.dataset = TG_TABLE_NAME;
    ELSE
        DELETE FROM lake.pii_findings AS f
         WHERE f.dataset = TG_TABLE_NAME AND f.record_id IN (SELECT o.id FROM old_rows AS o);
    END IF;
    RETURN NULL;
END
$$;
ALTER FUNCTION lake_internal._tg_pii_forget() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._tg_pii_forget() FROM PUBLIC;
