"""Pending quarantine items as a file a person can fix, and the fixed file back as corrections.

`export_pending` writes the items awaiting a decision that match the filters of
lake.quarantine_pending as JSON Lines, one item a line: id, dataset, batch_id, record_ref,
user_id, ts, reasons, and doc, the record as it was sent (pii_fields show their masks; a field
left as its mask keeps its value), or, for bytes that never parsed, doc null and raw, the bytes
as text. The person fixes doc (or writes one for a raw item) and `import_corrections` sends each
line to lake.quarantine_correct, a transaction each: a line's outcome never depends on another's,
and importing the same file again changes nothing (already_corrected)."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from psycopg.rows import dict_row

from lake_client.errors import InputError, LakeError
from lake_client.export import whole_file
from lake_client.queries import sql

if TYPE_CHECKING:
    from lake_client.client import Lake

EXAMPLES = 5  # how many invalid corrections and errors a summary lists


def export_pending(
    lake: Lake, path: str | os.PathLike[str], filters: dict[str, Any], *, fetch: int = 1000
) -> int:
    """Write the pending items matching `filters` (the parameters of
    lake.quarantine_pending) to `path`; returns how many. The file appears under its name only
    when complete."""
    conn = lake.conn
    n = 0
    with whole_file(lake, path) as tmp:
        with (
            tmp.open("w", encoding="utf-8") as out,
            conn.cursor(name="lake_quarantine_export", row_factory=dict_row) as cur,
        ):
            cur.itersize = fetch
            cur.execute(sql("quarantine_pending"), filters)
            for row in cur:
                raw = row.pop("raw")
                item = {**row, "batch_id": str(row["batch_id"])}
                item["ts"] = None if row["ts"] is None else row["ts"].isoformat()
                if raw is not None and row["doc"] is None:
                    item["raw"] = bytes(raw).decode("utf-8", "backslashreplace")
                out.write(json.dumps(item, ensure_ascii=False) + "\n")
                n += 1
        conn.commit()
    return n


def import_corrections(
    lake: Lake, path: str | os.PathLike[str], note: str | None = None
) -> dict[str, Any]:
    """Send each line of `path` (as export_pending writes it, doc fixed) as a correction of its
    item. Returns lines, outcomes (count per outcome: stored, archived, invalid, no_owner,
    already_corrected, no_record for a line whose doc is still null, error for a line the lake
    refused), invalid and errors (the first few: line, id, reasons or message)."""
    outcomes: Counter[str] = Counter()
    invalid: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    lines = 0
    for number, text in _numbered_lines(path):
        if not text.strip():
            continue
        lines += 1
        try:
            item = json.loads(text)
            item_id, doc = int(item["id"]), item["doc"]
        except (ValueError, TypeError, KeyError) as exc:
            raise InputError(
                f"{path}, line {number}: not an exported item ({exc}); the lines before it "
                "were sent",
                hint="each line is a JSON object with the item's id and its corrected doc",
            ) from None
        if doc is None:
            outcomes["no_record"] += 1
            continue
        try:
            out = lake.quarantine_correct(item_id, doc, note)
        except LakeError as exc:
            outcomes["error"] += 1
            if len(errors) < EXAMPLES:
                errors.append({"line": number, "id": item_id, "message": str(exc.args[0])})
            continue
        outcomes[out["outcome"]] += 1
        if out["outcome"] == "invalid" and len(invalid) < EXAMPLES:
            invalid.append({"line": number, "id": item_id, "reasons": out["reasons"]})
    return {"lines": lines, "outcomes": dict(outcomes), "invalid": invalid, "errors": errors}


def _numbered_lines(path: str | os.PathLike[str]) -> Iterator[tuple[int, str]]:
    try:
        with Path(path).open(encoding="utf-8") as handle:
            yield from enumerate(handle, start=1)
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None
