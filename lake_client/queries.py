"""Named SQL blocks: every statement the client sends lives in queries/*.sql."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

from lake_client.telemetry import sql_comment

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


@cache
def _load() -> dict[str, str]:
    blocks: dict[str, str] = {}
    for entry in resources.files("lake_client").joinpath("queries").iterdir():
        if not entry.name.endswith(".sql"):
            continue
        text = entry.read_text()
        parts = _NAME.split(text)
        for name, body in zip(parts[1::2], parts[2::2], strict=True):
            lines = [ln for ln in body.strip().splitlines() if not ln.startswith("--")]
            if name in blocks:
                raise RuntimeError(f"query {name} is defined twice")
            blocks[name] = "\n".join(lines).strip()
    return blocks


def sql(name: str) -> str:
    """The SQL text of the block called `name`; inside a sampled trace, with a comment naming
    its span (lake_client.telemetry.sql_comment), so PostgreSQL's log ties the statement to it."""
    try:
        text = _load()[name]
    except KeyError:
        raise KeyError(f"no SQL block named {name!r} in lake_client/queries") from None
    return text + sql_comment()
