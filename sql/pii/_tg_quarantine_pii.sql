-- BEFORE INSERT row trigger of lake.quarantine: a quarantined record of a dataset with
-- pii_fields keeps them as the dataset would (masked in doc, encrypted in pii), and the reasons
-- about those fields lose their messages (lake_internal._pii_withhold). lake.quarantine_release
-- opens them again.
CREATE FUNCTION lake_internal._tg_quarantine_pii()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_fields text[] := (SELECT d.pii_fields FROM lake.datasets AS d WHERE d.name = NEW.dataset);
    v_sealed record;
BEGIN
    IF cardinality(v_fields) > 0 AND NEW.doc IS NOT NULL THEN
        v_sealed := lake_internal._pii_seal(v_fields, NEW.doc);
        NEW.doc := v_sealed.doc;
        NEW.pii := v_sealed.pii;
        NEW.reasons := lake_internal._pii_withhold(v_fields, NEW.reasons);
    END IF;
    RETURN NEW;
END
$$;
ALTER FUNCTION lake_internal._tg_quarantine_pii() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._tg_quarantine_pii() FROM PUBLIC;
