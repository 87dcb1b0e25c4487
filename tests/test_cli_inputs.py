"""The CLI's input handling and argument checks: none of these needs PostgreSQL or Redis.

Reading (compression told by magic bytes, zip members, streamed JSON arrays), CSV typing from a
schema, and the command line's usage errors (exit 2), input errors (exit 1) and configuration
errors, each a message and never a traceback.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import os
import socket
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lake_client import records
from lake_client.cli import EXIT_USAGE, app
from lake_client.errors import InputError
from lake_client.records import compression, csv_types, csv_value

pytestmark = pytest.mark.fast  # none of these needs a server

POINTS = [
    {"ts": "2026-01-01T00:00:00Z", "lat": i / 10, "lon": 2.0, "s": 'a,"]}\\'} for i in range(300)
]
JSONL = "".join(json.dumps(p) + "\n" for p in POINTS).encode()


def read(path: Path, fmt: str | None = None) -> dict[str, list[object]]:
    """label -> the records' JSON values, for every source the path names."""
    return {
        s.label: [json.loads(r.raw) for r in records.records(s)]
        for s in records.sources(str(path), fmt)
    }


def run(*args: str, env: dict[str, str | None] | None = None, stdin: bytes | None = None):
    return CliRunner().invoke(app, list(args), env=env, input=stdin)


# -- reading --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pack", "kind"),
    [(gzip.compress, "gzip"), (bz2.compress, "bzip2"), (lzma.compress, "xz"), (None, None)],
)
def test_compression_is_told_by_the_first_bytes_not_the_name(tmp_path: Path, pack, kind):
    # Named .jsonl whatever it holds: a gzip file named .jsonl used to load as garbage lines.
    path = tmp_path / "points.jsonl"
    path.write_bytes(pack(JSONL) if pack else JSONL)
    assert compression(path.read_bytes()[:16]) == kind
    assert read(path) == {"points.jsonl": POINTS}


def test_a_compressed_json_array_is_found_by_its_content(tmp_path: Path):
    path = tmp_path / "export.xz"  # no format in the name: the first character tells
    path.write_bytes(lzma.compress(json.dumps(POINTS, indent=2).encode()))
    assert read(path) == {"export.xz": POINTS}
    csv_gz = tmp_path / "points.csv.gz"
    csv_gz.write_bytes(gzip.compress(b"a,b\n1,x\n"))
    assert read(csv_gz) == {"points.csv.gz": [{"a": "1", "b": "x"}]}


def test_a_zip_archive_gives_each_member(tmp_path: Path):
    path = tmp_path / "takeout.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("2025/points.jsonl", JSONL)
        zf.writestr("more.json.gz", gzip.compress(json.dumps(POINTS[:2]).encode()))
        zf.writestr("empty/", b"")
        zf.writestr("__MACOSX/._points.jsonl", b"\x00\x05\x16\x07")
    sources = records.sources(str(path))
    assert [(s.label, s.fmt) for s in sources] == [
        ("takeout.zip:2025/points.jsonl", "jsonl"),
        ("takeout.zip:more.json.gz", "json"),
    ]
    refs = [r.ref for r in records.records(sources[0])]
    assert refs[:2] == ["2025/points.jsonl line 1", "2025/points.jsonl line 2"]
    assert [json.loads(r.raw) for r in records.records(sources[1])] == POINTS[:2]


@pytest.mark.parametrize(
    ("member", "content", "message"),
    [
        ("photo.jpg", b"\xff\xd8\xff\xe0 JFIF", "cannot tell the format of takeout.zip:photo.jpg"),
        ("inner.zip", b"PK\x03\x04rest", "takeout.zip:inner.zip is a zip archive inside"),
    ],
)
def test_a_member_that_cannot_be_read_is_named(tmp_path: Path, member, content, message):
    path = tmp_path / "takeout.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("points.jsonl", JSONL)
        zf.writestr(member, content)
    with pytest.raises(InputError, match=message):
        for source in records.sources(str(path)):
            records.scan(source)


def test_a_truncated_gzip_file_fails_the_first_pass(tmp_path: Path):
    path = tmp_path / "points.jsonl.gz"
    path.write_bytes(gzip.compress(JSONL)[:200])
    (source,) = records.sources(str(path))
    with pytest.raises(InputError, match=r"cannot read points\.jsonl\.gz") as caught:
        records.scan(source)
    assert caught.value.hint and "cut off" in caught.value.hint


@pytest.mark.parametrize("block", [1, 2, 3, 7, 1 << 20])
def test_a_json_array_streams_whatever_the_block_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int
):
    monkeypatch.setattr(records, "_BLOCK", block)
    values = [*POINTS[:20], "\\", '"]', 1.5, None, [[], {}], {"a": '\\"[{'}]
    path = tmp_path / "points.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(values, indent=1).encode() + b"\n ")
    assert read(path) == {"points.json": values}


def test_a_json_array_element_is_passed_on_as_written(tmp_path: Path):
    # Not valid JSON is the database's call (quarantined with its bytes), not the reader's.
    path = tmp_path / "odd.json"
    path.write_bytes(b'[{"ts": 1e999999}, {"a": tru}]')
    (source,) = records.sources(str(path))
    assert [r.raw for r in records.records(source)] == [b'{"ts": 1e999999}', b'{"a": tru}']


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'[{"ts": 1}, {"ts": 2}', "not closed"),
        (b"[1, 2] trailing", "after the end"),
        (b"[1,,2]", "malformed at byte 3"),
        (b"[1, 2,]", "malformed"),
        (b"\x00\x01\x02 not json at all", "is not JSON"),
    ],
)
def test_a_malformed_json_array_fails_the_first_pass(tmp_path: Path, content, message):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        for source in records.sources(str(path)):
            records.scan(source)


def test_the_first_pass_hashes_the_content_and_counts_the_records(tmp_path: Path):
    plain = tmp_path / "a.jsonl"
    plain.write_bytes(JSONL)
    packed = tmp_path / "b.jsonl"
    packed.write_bytes(gzip.compress(JSONL))
    first = records.scan(records.sources(str(plain))[0])
    second = records.scan(records.sources(str(packed))[0])
    assert first == second  # the same content: the same batch ids
    assert first.records == len(POINTS)


# -- CSV ------------------------------------------------------------------------------------------


def test_csv_cells_stay_text_without_a_schema():
    assert csv_value("01234") == "01234"
    assert csv_value("+49 30 1234567") == "+49 30 1234567"
    assert csv_value("1.5") == "1.5"
    assert csv_value("true") == "true"
    assert csv_value("") is None


def test_csv_cells_take_the_types_the_schema_declares():
    types = csv_types(
        {
            "type": "object",
            "properties": {
                "zip": {"type": "string"},
                "n": {"type": "integer"},
                "lat": {"type": "number"},
                "ok": {"type": ["boolean", "null"]},
                "either": {"type": ["string", "number"]},
                "any": {"description": "no type"},
            },
        }
    )
    assert types == {
        "zip": {"string"},
        "n": {"integer"},
        "lat": {"number"},
        "ok": {"boolean", "null"},
        "either": {"string", "number"},
    }
    assert csv_value("01234", types["zip"]) == "01234"
    assert csv_value("042", types["n"]) == 42
    assert csv_value("4.2", types["n"]) == "4.2"  # not an integer: the schema will say so
    assert csv_value("-1.5e3", types["lat"]) == -1500.0
    assert csv_value("7", types["lat"]) == 7
    assert csv_value("1e999", types["lat"]) == "1e999"  # not a finite number
    assert csv_value("true", types["ok"]) is True
    assert csv_value("yes", types["ok"]) == "yes"
    assert csv_value("12", types["either"]) == "12"  # a string is allowed: kept as written


def test_csv_rows_typed_by_columns(tmp_path: Path):
    path = tmp_path / "people.csv"
    path.write_text("name,zip,phone,age\nAda,01234,+4930123,36\nBob,,0301,x\n")
    (source,) = records.sources(str(path))
    types = csv_types({"properties": {"age": {"type": "integer"}, "phone": {"type": "string"}}})
    assert [json.loads(r.raw) for r in records.records(source, types)] == [
        {"name": "Ada", "zip": "01234", "phone": "+4930123", "age": 36},
        {"name": "Bob", "zip": None, "phone": "0301", "age": "x"},
    ]


# -- the command line ---------------------------------------------------------------------------


def test_dash_h_is_help_for_every_group():
    for args in ([], ["quarantine"], ["users"], ["keys"], ["audit"], ["jobs"], ["ingest"]):
        out = run(*args, "-h")
        assert out.exit_code == 0, out.output
        assert "Usage: " in out.output


def test_the_main_commands_show_examples():
    for command in ("ingest", "up", "migrate", "demo", "status", "quarantine", "bridge", "serve"):
        assert "Examples" in run(command, "-h").output, command
    assert "Examples" in run("quarantine", "list", "-h").output


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        (["ingest", "ds", "x.jsonl", "--format", "xml"], "'xml' is not one of"),
        (["ingest", "ds", "x.jsonl", "--batch-size", "0"], "--batch-size"),
        (["ingest", "ds", "x.jsonl", "--jobs", "0"], "--jobs"),
        (["ingest", "ds", "x.jsonl", "--user", "a", "--api-key", "lake_x"], "not both"),
        (["bridge", "--name", "no spaces!"], "--name"),
        (["bridge", "--name", "x" * 65], "--name"),
        (["restore", "ds", "2025-13"], "YYYY-MM"),
        (["quarantine", "list", "--status", "nope"], "--status"),
        (["create-dataset", "ds", "s.json", "-o", "novalue"], "key=value"),
        (["nope"], "No such command"),
    ],
)
def test_usage_errors_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], mentions: str
):
    (tmp_path / "s.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    out = run(*args)
    assert out.exit_code == EXIT_USAGE, out.output
    assert mentions in out.output
    assert "Traceback" not in out.output


def test_a_directory_named_like_a_file_is_an_input_error(tmp_path: Path):
    folder = tmp_path / "points.jsonl"
    folder.mkdir()
    out = run("ingest", "ds", str(folder), "--user", "alice")
    assert out.exit_code == 1
    assert f"error: {folder} is a directory, not a file" in out.output
    assert out.exception is None or isinstance(out.exception, SystemExit)


def test_a_path_that_is_not_utf8_is_shown_escaped(tmp_path: Path):
    name = os.fsdecode(bytes(tmp_path) + b"/\xff.jsonl")  # a surrogate, as from argv
    out = run("ingest", "ds", name, "--user", "alice")
    assert out.exit_code == 1
    assert "\\xff.jsonl does not exist" in out.output


@pytest.mark.parametrize("value", ["abc", "0", "70000", "5432x"])
def test_a_port_that_is_not_a_port_is_a_clear_error(tmp_path: Path, value: str):
    path = tmp_path / "p.jsonl"
    path.write_bytes(JSONL)
    for args in (["status"], ["dsn"], ["ingest", "ds", str(path), "--user", "alice"]):
        out = run(*args, env={"LAKE_PG_PORT": value, "LAKE_DSN": None})
        assert out.exit_code == 1, out.output
        assert f"error: LAKE_PG_PORT='{value}' is not a port number" in out.output
        assert "hint: set LAKE_PG_PORT to a number from 1 to 65535" in out.output


def test_a_zip_from_stdin_is_refused_clearly():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("a.jsonl", JSONL)
    out = run("ingest", "ds", "-", "--user", "alice", stdin=buffer.getvalue())
    assert out.exit_code == 1
    assert "a zip archive cannot be read from stdin" in out.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_status_exits_1_when_nothing_runs(tmp_path: Path):
    env: dict[str, str | None] = {
        "LAKE_HOME": str(tmp_path / "home"),
        "LAKE_PG_PORT": str(_free_port()),
        "LAKE_REDIS_PORT": str(_free_port()),
    }
    for var in ("LAKE_DSN", "LAKE_REDIS_URL", "PGHOST", "PGPORT", "PGDATABASE", "PGUSER"):
        env[var] = None
    out = run("status", env=env)
    assert out.exit_code == 1, out.output
    assert "PostgreSQL: not running" in out.output
    doc = json.loads(run("status", "--json", env=env).stdout)
    assert doc["pg_running"] is False and doc["redis_running"] is False


def test_an_unexpected_error_is_one_line_unless_debugging(monkeypatch: pytest.MonkeyPatch):
    from lake_client import local

    def broken() -> None:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(local, "status", broken)
    out = run("status")
    assert out.exit_code == 1
    assert out.output.splitlines()[0] == "error: unexpected ZeroDivisionError: division by zero"
    assert "--debug" in out.output and "Traceback" not in out.output
    debugged = run("--debug", "status")
    assert isinstance(debugged.exception, ZeroDivisionError)
    assert isinstance(run("status", env={"LAKE_DEBUG": "1"}).exception, ZeroDivisionError)
