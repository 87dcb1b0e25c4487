"""Loading input sources (files, zip members, stdin) into a dataset, as `lake ingest` does.

Every re-readable source is read through once before anything is written (lake_client.records
.scan): a damaged archive or a JSON array that is not closed fails with nothing stored. That
pass also hashes the content, and the batch ids derive from it: loading the same content again
(after a crash or Ctrl-C half-way) skips the batches that were committed instead of storing
them twice. stdin cannot be read twice: its batches get random ids.

A dataset that declares a source format (lake.source_formats()) has its files read the way the
format says (e.g. the locations of a Takeout Records.json), unless --format is given. A zip
archive whose members include files of a source format that some dataset declares (a Google
Takeout zip) sends each such member to that dataset (the named one first) and skips, by name,
the members no dataset takes.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from lake_client.client import BatchResult, IngestSummary, Lake
from lake_client.errors import UnknownDataset
from lake_client.records import Source, csv_types, records, scan


@dataclass
class SourceLoad:
    """One source's part of a load: the batches as they commit, the summary once done."""

    source: Source
    dataset: str = ""  # where it goes: the load's dataset, or the one a zip member is routed to
    skipped: str | None = None  # why a zip member is not loaded (no dataset takes it)
    namespace: uuid.UUID | None = None  # None: random batch ids (stdin)
    records: int | None = None  # known after the first pass
    committed: list[BatchResult] = field(default_factory=list)
    summary: IngestSummary | None = None

    @property
    def committed_records(self) -> int:
        return sum(b.received for b in self.committed)


@dataclass
class Load:
    """The state of a load, kept up to date as batches commit, so an interrupted or failed load
    can say what is stored."""

    dataset: str
    parts: list[SourceLoad] = field(default_factory=list)

    @property
    def summaries(self) -> list[IngestSummary]:
        return [p.summary for p in self.parts if p.summary is not None]

    @property
    def committed_batches(self) -> int:
        return sum(len(p.committed) for p in self.parts)

    @property
    def total_records(self) -> int | None:
        counts = [p.records for p in self.parts]
        return None if any(n is None for n in counts) else sum(n or 0 for n in counts)


def namespace(dataset: str, principal: str | None, batch_size: int, sha256: str) -> uuid.UUID:
    """Batch ids of a content loaded for a principal in batches of `batch_size`: the same
    four give the same ids (the string is the one `lake ingest` has always used)."""
    return uuid.uuid5(
        uuid.NAMESPACE_URL, f"datapunk-lake:{dataset}:{principal or ''}:{batch_size}:{sha256}"
    )


def prepare(
    lake: Lake, load: Load, sources: list[Source], principal: str | None, batch_size: int
) -> dict[str, frozenset[str]]:
    """Read every re-readable source through (failing before any write) and fix its batch
    ids. Returns the CSV column types from the dataset's schema."""
    schema = lake.dataset_schema(load.dataset)
    if schema is None:  # found before reading a large file through (the database checks too)
        raise UnknownDataset(
            f"dataset {load.dataset!r} does not exist",
            hint="`lake datasets` lists the datasets; an administrator creates one with "
            "`lake create-dataset`",
        )
    types = csv_types(schema) if any(s.fmt == "csv" for s in sources) else {}
    formats = {row["dataset"]: row for row in lake.dataset_source_formats()}
    routed = any(_takers(s, formats, load.dataset) for s in sources if s.member is not None)
    for source in sources:
        part = SourceLoad(source, load.dataset)
        if routed:
            takers = _takers(source, formats, load.dataset)
            if not takers:
                part.skipped = "no dataset's source format takes this member"
                part.records = 0
                load.parts.append(part)
                continue
            part.dataset = takers[0]
        fmt = formats.get(part.dataset)
        if fmt is not None and not source.told:
            source = part.source = replace(source, fmt=fmt["reader"])
        if source.rereadable:
            result = scan(source, types)
            part.records = result.records
            part.namespace = namespace(part.dataset, principal, batch_size, result.sha256)
        load.parts.append(part)
    return types


def _takers(source: Source, formats: dict[str, dict[str, Any]], named: str) -> list[str]:
    """The datasets whose source format a zip member is a file of, the named dataset first."""
    if source.member is None:
        return []
    out = [d for d, f in formats.items() if re.search(f["member_pattern"], source.member)]
    return sorted(out, key=lambda d: d != named)


def run(
    lake: Lake,
    load: Load,
    types: dict[str, frozenset[str]],
    *,
    batch_size: int,
    jobs: int | None,
    on_batch: Callable[[BatchResult], None] | None = None,
) -> None:
    """Load each prepared source, one after the other, on `jobs` sessions (None: one per
    server core); `load` records each batch as it commits."""
    for part in load.parts:
        if part.skipped:
            continue

        def committed(result: BatchResult, _nbytes: int, part: SourceLoad = part) -> None:
            part.committed.append(result)
            if on_batch is not None:
                on_batch(result)

        part.summary = lake.ingest(
            part.dataset,
            records(part.source, types),
            batch_size=batch_size,
            origin=part.source.label,
            on_batch=committed,
            batch_namespace=part.namespace,
            jobs=jobs,
        )
