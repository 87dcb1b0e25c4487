"""How the command line shows things: rich tables and progress bars for a person at a terminal,
plain tab-separated lines when stdout is a pipe or a file, one JSON document with --json.

The commands (cli.py) and the demo (demo.py) both print through here; nothing here talks to
the database.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

import orjson
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from lake_client.client import BatchResult, IngestSummary
from lake_client.loader import Load
from lake_client.records import printable

console = Console(soft_wrap=True, highlight=False)
err_console = Console(stderr=True, soft_wrap=True, highlight=False)

_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})

# Text any terminal or pipe can print: a name from the file system may hold bytes that are not
# UTF-8 (kept by Python as surrogates), shown as \xNN escapes.
shown = printable


def say(text: str, *, markup: bool = True) -> None:
    """A line for the reader on stdout (rich markup is dropped when stdout is not a terminal)."""
    console.print(text if markup else escape(text))


def note(text: str) -> None:
    """A line on stderr: progress, errors, what to do next."""
    err_console.print(text)


def plain(text: str) -> None:
    """A line exactly as given (a key, a DSN): no markup, no wrapping."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def when(value: Any) -> str:
    return "" if value is None else str(value)[:19]


def json_doc(doc: Any) -> None:
    """One JSON document on stdout: datetimes as ISO 8601, bytes as text (bytes that are not
    UTF-8 as \\xNN), anything else orjson cannot take (intervals, decimals) as text."""
    sys.stdout.flush()
    options = orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS
    sys.stdout.buffer.write(orjson.dumps(doc, default=_json_default, option=options) + b"\n")
    sys.stdout.flush()


def _json_default(value: Any) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "backslashreplace")
    return str(value)


def table(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    title: str | None = None,
    no_wrap: Sequence[str] = (),
) -> None:
    """A table: drawn with rich at a terminal; else a header line and one tab-separated line
    per row, never truncated (tabs, newlines and backslashes in a cell are escaped)."""
    if console.is_terminal:
        t = Table(title=title)
        for name in columns:
            t.add_column(name, no_wrap=name in no_wrap, overflow="fold")
        for row in rows:
            t.add_row(*(escape(_cell(v)) for v in row))
        console.print(t)
        return
    out = sys.stdout
    out.write("\t".join(columns) + "\n")
    for row in rows:
        out.write("\t".join(_cell(v).translate(_ESCAPES) for v in row) + "\n")
    out.flush()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return when(value)
    return shown(str(value))


def partitions(rows: list[dict[str, Any]], counts: dict[str, int] | None = None) -> None:
    """The partitions; `counts` (exact rows per partition) replaces the estimates."""
    out = []
    for r in rows:
        n = counts.get(r["partition"], 0) if counts is not None else r["rows_estimate"]
        out.append(
            (
                r["dataset"],
                r["partition"],
                "-inf" if r["range_from"] is None else f"{r['range_from']:%Y-%m-%d}",
                "+inf" if r["range_to"] is None else f"{r['range_to']:%Y-%m-%d}",
                "" if n is None else f"{n:,}",
                f"{r['bytes'] / 1024:,.0f} kB",
                r["tier"] or "",
            )
        )
    columns = ("dataset", "partition", "from", "to", "rows" if counts else "rows (est.)")
    table((*columns, "size", "tier"), out)


def _archived(n: int) -> str:
    """The archived count, shown when records went to month archives (history older than the
    lake's first month)."""
    return f"archived {n:,}, " if n else ""


def summary(result: IngestSummary, source: str | None = None) -> None:
    """What one load did: counts, skipped batches, the most frequent reasons."""
    skipped = [b for b in result.batches if b.duplicate]
    where = f"{escape(shown(source))} → " if source else ""
    if result.batches and len(skipped) == len(result.batches):
        say(
            f"{where}[bold]{result.dataset}[/]: nothing new: {len(skipped)} batch(es) were "
            f"already stored ({result.received:,} records: accepted {result.accepted:,}, "
            f"{_archived(result.archived)}quarantined {result.quarantined:,})"
        )
    else:
        say(
            f"{where}[bold]{result.dataset}[/]: received {result.received:,}, "
            f"accepted [green]{result.accepted:,}[/], "
            f"{_archived(result.archived)}"
            f"quarantined [yellow]{result.quarantined:,}[/] "
            f"in {result.seconds:.1f} s ({result.records_per_second:,.0f} records/s"
            f"{f', {result.jobs} sessions' if result.jobs > 1 else ''})"
        )
        if skipped:
            say(f"{len(skipped)} batch(es) had been ingested before and were skipped")
    if result.reasons:
        table(
            ("rule", "records", "example"),
            [(r.rule, f"{r.records:,}", r.example) for r in result.reasons[:10]],
            title="why records were quarantined",
        )


def summary_doc(result: IngestSummary, source: str | None = None) -> dict[str, Any]:
    """The same as a JSON-ready dict."""
    return {
        "source": None if source is None else shown(source),
        "dataset": result.dataset,
        "received": result.received,
        "accepted": result.accepted,
        "archived": result.archived,
        "quarantined": result.quarantined,
        "batches": len(result.batches),
        "batches_skipped": sum(1 for b in result.batches if b.duplicate),
        "jobs": result.jobs,
        "seconds": round(result.seconds, 3),
        "reasons": [
            {"rule": r.rule, "records": r.records, "example": r.example} for r in result.reasons
        ],
    }


def load(done: Load) -> None:
    """What a load did, per source when there were several (a zip archive's members)."""
    several = len(done.parts) > 1
    for part in done.parts:
        if part.summary is not None:
            summary(part.summary, part.source.label if several else None)
        elif part.skipped:
            say(f"{escape(shown(part.source.label))}: skipped ({part.skipped})")


def load_doc(done: Load) -> dict[str, Any]:
    """The same as a JSON-ready dict: totals, and each source's summary."""
    summaries = done.summaries
    return {
        "dataset": done.dataset,
        "received": sum(s.received for s in summaries),
        "accepted": sum(s.accepted for s in summaries),
        "archived": sum(s.archived for s in summaries),
        "quarantined": sum(s.quarantined for s in summaries),
        "sources": [
            summary_doc(p.summary, p.source.label) for p in done.parts if p.summary is not None
        ],
        "skipped": [
            {"source": shown(p.source.label), "reason": p.skipped} for p in done.parts if p.skipped
        ],
    }


def stored_so_far(done: Load, why: str) -> None:
    """What an interrupted or failed load stored, and how to go on (stderr)."""
    if not done.committed_batches:
        note(f"{why}: nothing was stored")
        return
    note(f"{why}; stored so far:")
    rereadable = True
    for part in done.parts:
        if not part.committed and part.summary is None:
            continue
        n = part.committed_records
        if part.summary is not None:
            what = f"all {n:,} records"
        else:
            what = f"{len(part.committed)} batch(es), records {_runs(part.committed)}"
        note(f"  {shown(part.source.label)}: {what}")
        rereadable = rereadable and part.source.rereadable
    if rereadable:
        note(
            "to resume, run the same command again: the batches already stored are recognised "
            "by their ids and skipped (so is a batch whose commit reached the database just as "
            "it stopped)"
        )
    else:
        note(
            "stdin cannot be read again, so a re-run would store those records twice: "
            "load the records of the input outside the runs above (and check lake.batches for "
            "a batch whose commit reached the database just as it stopped)"
        )


def _runs(batches: Sequence[BatchResult]) -> str:
    """The input positions of the records of `batches` as runs: "1 to 20,000 and 30,001 to
    40,000" (parallel sessions commit batches out of order)."""
    runs: list[list[int]] = []
    for b in sorted(batches, key=lambda b: b.first):
        last = b.first + b.received - 1
        if runs and b.first == runs[-1][1] + 1:
            runs[-1][1] = last
        else:
            runs.append([b.first, last])
    parts = [f"{a:,} to {z:,}" for a, z in runs]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


@contextlib.contextmanager
def progress(
    description: str, total: int | None, *, eta: bool = True
) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr (only at a terminal); yields advance(amount, records)."""
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[records]:,} records"),
        TimeElapsedColumn(),
    ]
    if eta:
        columns.append(TimeRemainingColumn())
    with Progress(
        *columns, console=err_console, disable=not err_console.is_terminal, transient=False
    ) as bar:
        task = bar.add_task(escape(shown(description)), total=total or None, records=0)

        def advance(amount: int, records: int) -> None:
            done = bar.tasks[task].fields["records"] + records
            bar.update(task, advance=amount, records=done)

        yield advance
        if total:
            bar.update(task, completed=total)


def error(message: str, hint: str | None = None) -> None:
    """An error as the CLI reports it: one line, and a hint line when there is one."""
    err_console.print(f"[bold red]error:[/] {escape(shown(message))}")
    if hint:
        err_console.print(f"hint: {escape(shown(hint))}")


def debug_enabled() -> bool:
    return os.environ.get("LAKE_DEBUG", "") not in ("", "0")
