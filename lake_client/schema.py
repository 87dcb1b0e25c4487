"""Build the lake's schema from the canonical sources: sql/ (in manifest order) and plpython/.

The migrations call these functions, and so do the tests that build a database straight from
sql/ to prove both routes give the same schema.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql as pgsql

from lake_client.config import source_root
from lake_client.errors import ConfigurationError


@dataclass(frozen=True)
class PlpythonModule:
    name: str  # dotted module name, e.g. "lake_validate.compile"
    source: str
    is_package: bool


def sql_files(root: Path | None = None) -> list[Path]:
    """The files of sql/ in the order of sql/manifest.txt: one path a line, sections headed by
    comments (`# == ingest: ... ==`), blank lines between them. Every .sql file under sql/ must
    be listed exactly once, so a file cannot be forgotten or applied twice."""
    base = (root or source_root()) / "sql"
    names = [
        line.strip()
        for line in (base / "manifest.txt").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    on_disk = {str(path.relative_to(base)) for path in base.rglob("*.sql")}
    problems = sorted(
        [f"{name}: listed twice" for name in set(names) if names.count(name) > 1]
        + [f"{name}: listed, but no such file" for name in set(names) - on_disk]
        + [f"{name}: not listed" for name in on_disk - set(names)]
    )
    if problems:
        raise ConfigurationError("sql/manifest.txt does not match sql/: " + "; ".join(problems))
    return [base / name for name in names]


def plpython_modules(root: Path | None = None) -> list[PlpythonModule]:
    """Every module under plpython/, packages included, sorted by name."""
    base = (root or source_root()) / "plpython"
    modules = []
    for path in sorted(base.rglob("*.py")):
        rel = path.relative_to(base).with_suffix("")
        parts = list(rel.parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        modules.append(PlpythonModule(".".join(parts), path.read_text(), is_package))
    return modules


def _dollar_quote(text: str, tag_base: str) -> str:
    tag = tag_base
    n = 0
    while f"${tag}$" in text:
        n += 1
        tag = f"{tag_base}{n}"
    return f"${tag}${text}${tag}$"


def plpython_source_function(modules: list[PlpythonModule]) -> str:
    """SQL that (re)defines lake_internal._plpython_source(), which serves the modules' source
    to the import hook of lake_internal._plpy_bootstrap(). Generated, so plpython/ stays plain
    Python files."""
    rows = []
    for i, mod in enumerate(modules):
        name = mod.name.replace("'", "''")
        rows.append(
            f"        ('{name}', {_dollar_quote(mod.source, f'src{i}_')}, "
            f"{'true' if mod.is_package else 'false'})"
        )
    values = ",\n".join(rows) if rows else "        (NULL::text, NULL::text, NULL::boolean)"
    return f"""\
-- Generated from plpython/ by lake_client.schema: the source of the lake's PL/Python modules.
CREATE OR REPLACE FUNCTION lake_internal._plpython_source(p_module text, OUT source text,
                                                 OUT is_package boolean)
LANGUAGE sql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT m.source, m.is_package
      FROM (VALUES
{values}
      ) AS m(name, source, is_package)
     WHERE m.name = p_module
$fn$;
REVOKE ALL ON FUNCTION lake_internal._plpython_source(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake_internal._plpython_source(text) TO lake_owner;
"""


def apply_sql_tree(conn: psycopg.Connection[object], root: Path | None = None) -> None:
    """Create every object of sql/ in manifest order, then install the PL/Python modules.
    Runs in the caller's transaction."""
    for path in sql_files(root):
        try:
            conn.execute(path.read_text().encode())
        except psycopg.Error as exc:
            raise RuntimeError(f"{path.relative_to(path.parents[1])}: {exc}") from exc
    install_plpython(conn, root)
    conn.execute(
        pgsql.SQL("COMMENT ON SCHEMA lake IS {}").format(
            pgsql.Literal(f"Datapunk Lake, built from sources {source_hash(root)}")
        )
    )
    # sql/settings.sql narrowed the search_path for the build; give the caller's back.
    conn.execute("SET LOCAL search_path TO DEFAULT")


def source_hash(root: Path | None = None) -> str:
    """A digest of sql/ and plpython/: what the baseline revision builds. Until the first
    release the baseline changes in place, and a database built from older sources must be
    rebuilt; lake_client.migrate uses this to say so."""
    base = root or source_root()
    digest = hashlib.sha256()
    for path in [*sql_files(base), *sorted((base / "plpython").rglob("*.py"))]:
        digest.update(str(path.relative_to(base)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def install_plpython(conn: psycopg.Connection[object], root: Path | None = None) -> None:
    conn.execute(plpython_source_function(plpython_modules(root)).encode())
