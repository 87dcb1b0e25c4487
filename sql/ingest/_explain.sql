-- Structured reasons why each document fails its schema: one jsonb array per document, empty
-- for a valid one. p_key names the schema version (dataset:version) so each session compiles a
-- schema once.
CREATE FUNCTION lake_internal._explain(p_key text, p_schema jsonb, p_docs jsonb[])
RETURNS jsonb[]
LANGUAGE plpython3u
STABLE
AS $$
if "lake_ready" not in GD:
    plpy.execute("SELECT lake_internal._plpy_bootstrap()")
import json
from lake_validate import validator_for
reasons = validator_for(p_key, json.loads(p_schema)).explain_many(list(p_docs or []))
return [json.dumps(r) for r in reasons]
$$;
REVOKE ALL ON FUNCTION lake_internal._explain(text, jsonb, jsonb[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake_internal._explain(text, jsonb, jsonb[]) TO lake_owner;
