-- BEFORE INSERT row trigger of lake.quarantine: a quarantined record of a dataset with
-- pii_fields keeps them as the dataset would (masked in doc, encrypted in pii), and the reasons
-- about those fields lose their messages, which may quote the value. lake.quarantine_release
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
        NEW.reasons := (
            SELECT coalesce(jsonb_agg(CASE
                       WHEN EXISTS (SELECT FROM unnest(v_fields) AS f
                                     WHERE r ->> 'path' = '$.' || f
                                        OR starts_with(r ->> 'path', '$.' || f || '.')
                                        OR starts_with(r ->> 'path', '$.' || f || '['))
                       THEN r || jsonb_build_object('message',
                                                    'withheld: the field holds personal data')
                       ELSE r END ORDER BY o), '[]')
              FROM jsonb_array_elements(NEW.reasons) WITH ORDINALITY AS x(r, o));
    END IF;
    RETURN NEW;
END
$$;
ALTER FUNCTION lake_internal._tg_quarantine_pii() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._tg_quarantine_pii() FROM PUBLIC;
