"""A person's data, taken home (GDPR art. 15 and 20): lake.export_user() streamed into a zip of
JSON Lines with a manifest, and the way back in.

The database gives the parts in order as (part, line) rows (`sql/rights/export_user.sql`); a
server-side cursor brings them `fetch` rows at a time and each line goes straight into its zip
member (deflated, written incrementally), so neither side holds the person's data in memory.
The manifest (`manifest.json`, the last member) has each member's line count, size and the
SHA-256 of its uncompressed content.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import psycopg
from psycopg.rows import tuple_row

from lake_client.errors import InputError, from_psycopg
from lake_client.queries import sql

if TYPE_CHECKING:
    from lake_client.client import Lake
    from lake_client.copy_ingest import IngestSummary

__all__ = ["MANIFEST", "Member", "export_user", "read_manifest", "records", "reingest"]

FORMAT = 1
MANIFEST = "manifest.json"
RECORDS = "records/"
SUFFIX = ".jsonl"


@dataclass
class Member:
    """One file of an export, as the manifest describes it."""

    name: str
    lines: int = 0
    bytes: int = 0
    sha256: str = ""


class _Writer:
    """The member being written: counts, size and SHA-256 of what goes in."""

    def __init__(self, archive: zipfile.ZipFile, name: str) -> None:
        self.member = Member(name)
        self._hash = hashlib.sha256()
        self._out: IO[bytes] = archive.open(name, "w", force_zip64=True)

    def write(self, line: str) -> None:
        data = line.encode() + b"\n"
        self._out.write(data)
        self._hash.update(data)
        self.member.lines += 1
        self.member.bytes += len(data)

    def close(self) -> Member:
        self._out.close()
        self.member.sha256 = self._hash.hexdigest()
        return self.member


@contextmanager
def whole_file(lake: Lake, path: str | os.PathLike[str]) -> Iterator[Path]:
    """A file that appears under `path` only when complete: the block writes the `.part`
    path it is given and commits its transaction. Should it fail, the part is deleted, the
    session is made usable again (Lake.recover) and a database error is raised as the lake's."""
    target = Path(path)
    tmp = target.with_name(target.name + ".part")
    try:
        yield tmp
    except psycopg.Error as exc:
        lake.recover()
        tmp.unlink(missing_ok=True)
        raise from_psycopg(exc) from exc
    except BaseException:
        lake.recover()
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, target)


def export_user(
    lake: Lake, path: str | os.PathLike[str], user: str | None = None, *, fetch: int = 5000
) -> dict[str, Any]:
    """Write everything the lake holds about a person to the zip `path`; returns the manifest.

    Without `user`: the session's user (authenticated with their own key). With `user`: an
    administrator exports that person. The zip appears under its name only when complete."""
    conn = lake.conn
    members: list[Member] = []
    subject = user
    with whole_file(lake, path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            writer: _Writer | None = None
            with conn.cursor(name="lake_export", row_factory=tuple_row) as cur:
                cur.itersize = fetch
                cur.execute(sql("export_user"), {"user_id": user})
                for part, line in cur:
                    if writer is None or part != writer.member.name:
                        if writer is not None:
                            members.append(writer.close())
                        writer = _Writer(archive, str(part))
                    if line is not None:
                        writer.write(str(line))
                if writer is not None:
                    members.append(writer.close())
            if subject is None:
                row = conn.execute(sql("current_user_id")).fetchone()
                subject = None if row is None else str(row["current_user_id"])
            manifest = {
                "format": FORMAT,
                "user": subject,
                "exported_at": datetime.now(UTC).isoformat(),
                "files": [asdict(m) for m in members],
            }
            archive.writestr(MANIFEST, json.dumps(manifest, indent=2) + "\n")
        conn.commit()  # the export is audited (user.export) when this commits
    return manifest


def read_manifest(path: str | os.PathLike[str], *, verify: bool = True) -> dict[str, Any]:
    """The manifest of an export; with `verify`, every member is read and its line count and
    SHA-256 compared with it (InputError when one differs or a member is missing or extra)."""
    try:
        with zipfile.ZipFile(path) as archive:
            manifest: dict[str, Any] = json.loads(archive.read(MANIFEST))
            if verify:
                listed = {f["name"]: f for f in manifest["files"]}
                present = set(archive.namelist()) - {MANIFEST}
                if present != set(listed):
                    raise InputError(
                        f"{path}: members {sorted(present ^ set(listed))} are not both in the "
                        "zip and in its manifest"
                    )
                for name, entry in listed.items():
                    h = hashlib.sha256()
                    lines = 0
                    with archive.open(name) as f:
                        while chunk := f.read(1 << 20):
                            h.update(chunk)
                            lines += chunk.count(b"\n")
                    if (lines, h.hexdigest()) != (entry["lines"], entry["sha256"]):
                        raise InputError(f"{path}: {name} does not match the manifest")
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise InputError(f"{path} is not a lake export: {exc}") from exc
    return manifest


def records(path: str | os.PathLike[str], dataset: str) -> Iterator[dict[str, Any]]:
    """The records of one dataset in an export, one dict (id, ts, doc, …) at a time."""
    with zipfile.ZipFile(path) as archive, archive.open(RECORDS + dataset + SUFFIX) as f:
        for line in f:
            item: dict[str, Any] = json.loads(line)
            yield item


def reingest(lake: Lake, path: str | os.PathLike[str]) -> dict[str, IngestSummary]:
    """Load an export's records back into the lake (the export round trip), for the session's
    user: each dataset's documents, through the ordinary ingest path, into datasets of the
    same names that must exist. The export is verified against its manifest first."""
    manifest = read_manifest(path)
    summaries = {}
    for entry in manifest["files"]:
        name = str(entry["name"])
        if name.startswith(RECORDS) and name.endswith(SUFFIX):
            dataset = name[len(RECORDS) : -len(SUFFIX)]
            docs = (item["doc"] for item in records(path, dataset))
            summaries[dataset] = lake.ingest(dataset, docs)
    return summaries
