"""plpython/lake_archive outside the database: write, read back, digest, damage."""

from __future__ import annotations

import gzip
import hashlib
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plpython"))

from lake_archive import (
    archive_paths,
    archive_root,
    count_user_lines,
    digest_file,
    digest_lines,
    lines_without,
    read_lines,
    read_manifest,
    remove,
    write_archive,
)

pytestmark = pytest.mark.fast  # needs no server (tests/conftest.py)

LINES = [
    json.dumps({"id": i, "doc": {"n": i, "s": "é\u2028"}}, ensure_ascii=False) for i in range(2500)
]


def write(tmp_path: Path) -> tuple[str, str, dict[str, object]]:
    data, manifest = archive_paths(str(tmp_path), "steps", "2025-11", "20261127T000000Z")
    full = write_archive(data, manifest, iter(LINES), {"dataset": "steps", "month": "2025-11"})
    return data, manifest, full


def test_root_is_the_setting_or_beside_the_data_directory():
    assert archive_root("", "/var/lib/postgresql/15/main/") == "/var/lib/postgresql/15/lake_archive"
    assert archive_root("/srv/archive", "/x/pg") == "/srv/archive"
    with pytest.raises(ValueError):
        archive_root("relative", "/x/pg")


def test_written_archive_reads_back_with_the_same_digest(tmp_path: Path):
    data, manifest, full = write(tmp_path)
    assert data == str(tmp_path / "steps/2025-11/steps_2025-11_20261127T000000Z.jsonl.gz")
    content = "".join(line + "\n" for line in LINES).encode()
    assert gzip.decompress(Path(data).read_bytes()) == content
    assert full["row_count"] == 2500 and full["sha256"] == hashlib.sha256(content).hexdigest()
    assert full["bytes"] == Path(data).stat().st_size
    assert read_manifest(manifest) == full and full["dataset"] == "steps"
    assert digest_file(data) == digest_lines(LINES) == (2500, full["sha256"])
    assert list(read_lines(data)) == LINES  # U+2028 inside a line does not split it
    assert not list(tmp_path.rglob("*.tmp"))


def test_damage_changes_the_digest(tmp_path: Path):
    data, _, full = write(tmp_path)
    raw = gzip.decompress(Path(data).read_bytes())
    Path(data).write_bytes(gzip.compress(raw[:-40]))  # the last line cut short
    assert digest_file(data).rows == 2500 and digest_file(data).sha256 != full["sha256"]
    Path(data).write_bytes(gzip.compress(raw.replace(b'"n": 7,', b'"n": 8,')))
    assert digest_file(data) != (2500, full["sha256"])
    Path(data).write_bytes(Path(data).read_bytes()[:100])  # a truncated gzip stream
    with pytest.raises(EOFError):
        digest_file(data)


def test_remove_counts_the_files_that_existed(tmp_path: Path):
    data, manifest, _ = write(tmp_path)
    assert remove([data, manifest, str(tmp_path / "missing")]) == 2
    assert not Path(data).exists()


def test_an_erasure_keeps_every_line_but_the_persons(tmp_path: Path):
    lines = [
        json.dumps({"id": 1, "user_id": "alice", "doc": {"note": "bob"}}),
        json.dumps({"id": 2, "user_id": "bob", "doc": {"friend": "alice"}}),  # bob's: stays
        json.dumps({"id": 3, "user_id": "alice", "doc": {}}),
        json.dumps({"id": 4, "user_id": "alicex", "doc": {}}),  # another id
    ]
    data, manifest = archive_paths(str(tmp_path), "steps", "2025-11", "x")
    write_archive(data, manifest, iter(lines), {})
    assert count_user_lines(data, "alice") == 2
    assert [json.loads(x)["id"] for x in lines_without(data, "alice")] == [2, 4]
    assert list(lines_without(data, "carol")) == lines
