-- BEFORE INSERT OR UPDATE row trigger of a dataset with pii_fields (TG_ARGV[0]: the dataset):
-- the fields' values are encrypted into the row's pii column and replaced in doc by masks, so
-- applications, caches and backups of the table see j***@example.com. On UPDATE a field whose
-- mask is unchanged keeps its original; a new value replaces it; a removed field is dropped.
-- Fires for rows stored through the parent and straight into partitions alike.
CREATE FUNCTION lake._tg_pii_protect()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_fields text[] := (SELECT d.pii_fields FROM lake.datasets AS d WHERE d.name = TG_ARGV[0]);
    v_orig   jsonb := '{}';
    v_masks  jsonb := '{}';
    v_field  text;
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.pii IS NOT NULL THEN
        v_orig := lake._pii_open('{}', OLD.pii);
    END IF;
    FOREACH v_field IN ARRAY coalesce(v_fields, '{}') LOOP
        IF jsonb_typeof(NEW.doc) = 'object' AND NEW.doc ? v_field THEN
            IF NOT (TG_OP = 'UPDATE' AND v_orig ? v_field
                    AND NEW.doc -> v_field = OLD.doc -> v_field) THEN
                v_orig := v_orig || jsonb_build_object(v_field, NEW.doc -> v_field);
            END IF;
            v_masks := v_masks || jsonb_build_object(v_field, lake._pii_mask(v_orig -> v_field));
        ELSE
            v_orig := v_orig - v_field;
        END IF;
    END LOOP;
    IF v_orig = '{}' THEN
        NEW.pii := NULL;
    ELSE
        NEW.doc := NEW.doc || v_masks;
        NEW.pii := public.pgp_sym_encrypt(v_orig::text,
                                          (SELECT k.key FROM lake.pii_keys AS k WHERE k.id = 1),
                                          'cipher-algo=aes256, s2k-mode=1');
    END IF;
    RETURN NEW;
END
$$;
ALTER FUNCTION lake._tg_pii_protect() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake._tg_pii_protect() FROM PUBLIC;
