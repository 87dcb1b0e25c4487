"""Only the build step that pyproject.toml cannot declare: compile proto/ into lake_client.lakepb
(proto/generate.py) before setuptools looks for the package, for a wheel and for
`pip install -e .` alike (grpcio-tools is a build requirement)."""

from __future__ import annotations

import runpy
from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).resolve().parent
runpy.run_path(str(ROOT / "proto" / "generate.py"))["generate"](ROOT)

setup()
