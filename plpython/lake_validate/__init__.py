"""lake_validate: JSON Schema validation for the Datapunk Lake, inside PostgreSQL.

Runs under PL/Python (plpython3u, the system Python 3.11 with Debian's
python3-fastjsonschema and python3-jsonschema) and in plain Python for tests.  Loaded from
source text by a meta-path finder, so submodules import each other absolutely and nothing
reads its own file path or data files.

Public API:

* :func:`compile_predicate` ``(schema, doc_expr="doc") -> str | None``: a sound SQL boolean
  expression (TRUE valid, FALSE invalid, NULL unknown) for set-based validation.
* :func:`explain` ``(schema, doc) -> list[dict]`` and :func:`explain_many`
  ``(schema, docs: list[str]) -> list[list[dict]]``: reasons ``{"path", "rule", "message"}``.
* :func:`validator_for` ``(key, schema) -> SchemaValidator``: per-session cache.
* :func:`check_schema` ``(schema) -> list[str]``: problems that make a schema unacceptable.
* :func:`quote_literal`, :func:`quote_ident`, :func:`jsonb_literal`: SQL quoting helpers.
"""

from lake_validate.compile import compile_predicate, jsonb_literal, quote_ident, quote_literal
from lake_validate.explain import (
    SchemaValidator,
    check_schema,
    explain,
    explain_many,
    validator_for,
)
from lake_validate.formats import FORMAT_PATTERNS
from lake_validate.values import loads

#: Submodules in dependency order (for loaders that install the package from source).
SUBMODULES = ("values", "formats", "compile", "explain")

__all__ = [
    "FORMAT_PATTERNS",
    "SUBMODULES",
    "SchemaValidator",
    "check_schema",
    "compile_predicate",
    "explain",
    "explain_many",
    "jsonb_literal",
    "loads",
    "quote_ident",
    "quote_literal",
    "validator_for",
]
