"""Compile proto/ into the package lake_client.lakepb with grpcio-tools: the messages
(lake_pb2.py, with its .pyi for mypy) and the service stubs (lake_pb2_grpc.py).

The generated code is build output, never committed (.gitignore): setup.py runs this when the
project is built or installed (`pip install -e .`, a wheel), and `make proto` after an edit of
the .proto. Usage: python proto/generate.py [checkout]
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

PROTO = Path("datapunk/lake/v1/lake.proto")
PACKAGE = Path("lake_client/lakepb")
INIT = '"""Generated from proto/datapunk/lake/v1/lake.proto by proto/generate.py: do not edit."""\n'


def generate(root: Path) -> Path:
    """Write lake_client/lakepb under `root` (a checkout) from root/proto; returns the folder."""
    from grpc_tools import protoc  # build-time dependency (pyproject [build-system])

    include = str(Path(protoc.__file__).parent / "_proto")  # google/protobuf/*.proto
    target = root / PACKAGE
    with tempfile.TemporaryDirectory() as tmp:
        argv = [
            "protoc",
            f"-I{root / 'proto'}",
            f"-I{include}",
            f"--python_out={tmp}",
            f"--pyi_out={tmp}",
            f"--grpc_python_out={tmp}",
            str(root / "proto" / PROTO),
        ]
        if protoc.main(argv) != 0:
            raise SystemExit(f"protoc failed on {PROTO}")
        out = Path(tmp) / PROTO.parent
        target.mkdir(parents=True, exist_ok=True)
        for name in ("lake_pb2.py", "lake_pb2.pyi"):
            shutil.copyfile(out / name, target / name)
        # protoc imports the messages by their proto path; inside the package they are a sibling.
        stubs = (out / "lake_pb2_grpc.py").read_text()
        stubs = stubs.replace("from datapunk.lake.v1 import lake_pb2", "from . import lake_pb2")
        (target / "lake_pb2_grpc.py").write_text(stubs)
        (target / "__init__.py").write_text(INIT)
        (target / "py.typed").write_text("")
    return target


if __name__ == "__main__":
    print(generate(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parents[1]))
