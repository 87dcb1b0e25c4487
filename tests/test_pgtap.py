"""Runs the pgTAP files in tests/pgtap/, each in a fresh database, and fails on any `not ok`."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

PGTAP = sorted((Path(__file__).parent / "pgtap").glob("*.sql"))


@pytest.mark.parametrize("script", PGTAP, ids=[p.stem for p in PGTAP])
def test_pgtap(db: str, script: Path) -> None:
    proc = subprocess.run(
        ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", db, "-f", str(script)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    plan = re.search(r"^1\.\.(\d+)$", out, re.M)
    assert plan, f"no TAP plan in:\n{out}"
    oks = re.findall(r"^ok \d+", out, re.M)
    failures = re.findall(r"^not ok .*$", out, re.M)
    assert not failures, out
    assert len(oks) == int(plan.group(1)), out
