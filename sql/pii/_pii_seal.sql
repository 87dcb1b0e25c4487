-- A record ready to be stored with its pii_fields protected: doc with each present field's value
-- replaced by its mask (lake_internal._pii_mask), and pii, those values in clear as one JSON object
-- encrypted with the lake's newest key (lake_internal._pii_encrypt). pii is NULL when none of the
-- fields is present.
CREATE FUNCTION lake_internal._pii_seal(p_fields text[], p_doc jsonb, OUT doc jsonb, OUT pii bytea)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_clear jsonb := '{}';
    v_masks jsonb := '{}';
    v_field text;
BEGIN
    doc := p_doc;
    IF jsonb_typeof(p_doc) IS DISTINCT FROM 'object' THEN
        RETURN;
    END IF;
    FOREACH v_field IN ARRAY coalesce(p_fields, '{}') LOOP
        IF p_doc ? v_field THEN
            v_clear := v_clear || jsonb_build_object(v_field, p_doc -> v_field);
            v_masks := v_masks || jsonb_build_object(v_field, lake_internal._pii_mask(p_doc -> v_field));
        END IF;
    END LOOP;
    IF v_clear <> '{}' THEN
        doc := p_doc || v_masks;
        pii := lake_internal._pii_encrypt(v_clear);
    END IF;
END
$$;
ALTER FUNCTION lake_internal._pii_seal(text[], jsonb) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._pii_seal(text[], jsonb) FROM PUBLIC;
