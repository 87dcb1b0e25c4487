"""The tests of plpython/ (tests/plpython/) run in the venv, the modules themselves in the
server's PL/Python, which imports Debian's packages: both must import the same versions of the
libraries the validator relies on, or the tests prove something the server does not run."""

from __future__ import annotations

import importlib.metadata

import fastjsonschema
import jsonschema
import psycopg

LIBRARIES = (jsonschema, fastjsonschema)

SERVER_VERSIONS = """
CREATE FUNCTION pg_temp.lake_test_versions() RETURNS jsonb LANGUAGE plpython3u AS $$
import json
from importlib.metadata import version
import fastjsonschema, jsonschema
return json.dumps({m.__name__: [version(m.__name__), m.__file__]
                   for m in (jsonschema, fastjsonschema)})
$$
"""


def test_plpython_imports_the_versions_the_tests_import(
    conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    conn.execute(SERVER_VERSIONS)
    row = conn.execute("SELECT pg_temp.lake_test_versions()").fetchone()
    assert row is not None and isinstance(row[0], dict)
    server = {name: version for name, (version, _) in row[0].items()}
    here = {m.__name__: importlib.metadata.version(m.__name__) for m in LIBRARIES}
    assert server == here, (
        f"PL/Python imports {row[0]}, the tests {here}: run `make venv` (it installs the "
        "system Python's versions into .venv)"
    )
