-- BEFORE INSERT OR UPDATE row trigger of a dataset with pii_fields (TG_ARGV[0]: the dataset): the
-- fields' values are encrypted into the row's pii column and replaced in doc by masks
-- (lake_internal._pii_seal), so applications, caches and dumps of the table see j***@example.com.
-- On UPDATE a field whose mask is unchanged keeps its original; a new value replaces it; a removed
-- field is gone. Fires for rows stored through the parent and straight into partitions alike.
CREATE FUNCTION lake_internal._tg_pii_protect()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_fields text[] := (SELECT d.pii_fields FROM lake.datasets AS d WHERE d.name = TG_ARGV[0]);
    v_clear  jsonb := NEW.doc;
    v_old    jsonb;
    v_field  text;
    v_sealed record;
BEGIN
    -- Rows lake.rollback restores are sealed already (lake_internal.restore_marks).
    IF TG_OP = 'INSERT' AND current_setting('lake.restoring', true) = TG_ARGV[0] THEN
        IF EXISTS (SELECT FROM lake_internal.restore_marks AS m
                    WHERE m.xact_id = pg_current_xact_id() AND m.dataset = TG_ARGV[0]) THEN
            RETURN NEW;
        END IF;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.pii IS NOT NULL AND jsonb_typeof(NEW.doc) = 'object' THEN
        v_old := lake_internal._pii_open('{}', OLD.pii);
        FOREACH v_field IN ARRAY v_fields LOOP
            IF v_old ? v_field AND NEW.doc -> v_field = OLD.doc -> v_field THEN
                v_clear := v_clear || jsonb_build_object(v_field, v_old -> v_field);
            END IF;
        END LOOP;
    END IF;
    v_sealed := lake_internal._pii_seal(v_fields, v_clear);
    NEW.doc := v_sealed.doc;
    NEW.pii := v_sealed.pii;
    RETURN NEW;
END
$$;
ALTER FUNCTION lake_internal._tg_pii_protect() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._tg_pii_protect() FROM PUBLIC;
