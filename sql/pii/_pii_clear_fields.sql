-- The top-level fields a JSON Schema keeps free of personal identifiers, so the PII scan need not
-- look at them (plpython/lake_pii: clear_fields). Computed once per schema version.
CREATE FUNCTION lake_internal._pii_clear_fields(p_schema jsonb)
RETURNS text[]
LANGUAGE plpython3u
IMMUTABLE
AS $$
if "lake_ready" not in GD:
    plpy.execute("SELECT lake_internal._plpy_bootstrap()")
import json
from lake_pii import clear_fields
return clear_fields(json.loads(p_schema))
$$;
REVOKE ALL ON FUNCTION lake_internal._pii_clear_fields(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake_internal._pii_clear_fields(jsonb) TO lake_owner;
