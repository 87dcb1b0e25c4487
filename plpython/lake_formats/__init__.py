"""lake_formats: source formats, the exports people bring, turned into a dataset's records.

A dataset may declare a source format (lake.create_dataset option ``source_format``); every
ingest path then passes each record as sent (a *source record*) through that format's
``convert`` inside the database, before validation (lake_internal._convert). The quarantine
keeps the source record when the converted one is invalid.

A format is one module of this package, named as the format (e.g. ``spotify_streaming.py``),
listed in FORMATS below, with:

* ``DESCRIPTION``: one line for people (lake.source_formats());
* ``READER``: how the client reads a file of this format into source records: ``json`` (one
  JSON array), ``jsonl``, ``items:<key>`` (the elements of the array under a top-level key,
  streamed), or ``xml:<tag>`` (each element of that tag, its attributes as an object, streamed);
* ``MEMBER``: a regular expression matched (search) against a zip member's path: the members
  of an archive (a Google Takeout zip) that are files of this format;
* the conversion, one of:
  ``SQL``: one SQL expression over the source record ``d`` (jsonb) giving the record, run
  set-based over a statement's records (fast: formats of millions of records), or
  ``convert(doc) -> dict``: Python, one source record (parsed JSON) to the record.
  Either never fails for a bad record: it leaves out what it cannot read, and the dataset's
  JSON Schema says what is missing (the reasons of the quarantine entry). A source record that
  is not a JSON object becomes ``{"source_error": ...}`` before either sees it;
* optionally, with ``SQL``, ``TIME_FIELD`` and ``TIME_SQL``: the record's time where the
  conversion computes it anyway (e.g. from milliseconds), an SQL expression over ``d`` giving a
  timestamptz, or NULL where the lake must read the record's ``TIME_FIELD`` as it reads any
  record's time (lake.parse_times). ``SQL`` may use it as ``t``. The lake takes it instead of
  reading the field back, for a dataset whose time field is ``TIME_FIELD`` in RFC 3339, so it
  must be exactly what lake.parse_times reads from the field's value in the record (it is
  handed only where it is; tests/test_formats.py checks this on every form).

Runs under PL/Python and in plain Python (tests), like lake_validate.
"""

import importlib
import json
from types import ModuleType
from typing import Any

#: The formats, by module name. Adding a format: its module here, and its name in this tuple.
FORMATS = (
    "google_takeout_records",
    "google_takeout_semantic",
    "spotify_streaming",
    "apple_health",
)

_modules: dict[str, ModuleType] = {}


def module(name: str) -> ModuleType:
    """The module of a format (KeyError: no such format)."""
    if name not in FORMATS:
        raise KeyError(name)
    if name not in _modules:
        _modules[name] = importlib.import_module("lake_formats." + name)
    return _modules[name]


def describe() -> list[tuple[str, str, str, str, str | None, str | None, str | None]]:
    """(name, description, reader, member pattern, SQL expression or None, the time field and
    the SQL expression of its time or None) of every format."""
    return [
        (
            n,
            m.DESCRIPTION,
            m.READER,
            m.MEMBER,
            getattr(m, "SQL", None),
            getattr(m, "TIME_FIELD", None),
            getattr(m, "TIME_SQL", None),
        )
        for n, m in ((n, module(n)) for n in FORMATS)
    ]


def convert_one(convert: Any, doc: Any) -> Any:
    """A source record to a record; a source record that is not an object, or that the
    converter cannot read at all, becomes an object that says so (the schema refuses it)."""
    if not isinstance(doc, dict):
        return {"source_error": "a source record must be a JSON object"}
    try:
        out = convert(doc)
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError) as exc:
        return {"source_error": f"cannot convert: {type(exc).__name__}: {exc}"[:300]}
    return out


def convert_many(name: str, docs: list[str | None]) -> list[str | None]:
    """JSON texts (None stays None) converted by the format `name`, as JSON texts."""
    convert = module(name).convert
    loads = json.loads
    dumps = json.dumps
    return [
        None if d is None else dumps(convert_one(convert, loads(d)), separators=(",", ":"))
        for d in docs
    ]
