"""The lake installs and runs without the checkout: the wheel carries sql/, plpython/ and
migrations/, config.source_root() finds them from a checkout or an installed wheel, and the
default data directory is outside the package."""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from lake_client import config
from tests.conftest import CHECKOUT, server_folder
from tests.redis_cluster import free_ports

PYPROJECT = tomllib.loads((CHECKOUT / "pyproject.toml").read_text())
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]
VERSION = importlib.metadata.version("datapunk-lake")
# What the wheel is built from: everything pyproject.toml names, nothing else of the checkout.
DISTRIBUTED = (
    "pyproject.toml",
    "README.md",
    "LICENSE",
    "lake_client",
    "sql",
    "plpython",
    "migrations",
    "monitoring",
    "setup.py",  # compiles proto/ into lake_client.lakepb
    "proto",
)


@pytest.mark.fast
def test_every_package_of_lake_client_is_in_the_wheel() -> None:
    # setuptools cannot find packages at mapped folders, so pyproject lists them all: a package
    # added to lake_client (a folder with __init__.py) must be listed or the wheel lacks it.
    packages = {
        ".".join(init.parent.relative_to(CHECKOUT).parts)
        for init in (CHECKOUT / "lake_client").rglob("__init__.py")
    }
    assert packages <= set(SETUPTOOLS["packages"])
    for package, folder in SETUPTOOLS["package-dir"].items():
        assert package in SETUPTOOLS["packages"]
        assert (CHECKOUT / folder).is_dir()


@pytest.mark.fast
def test_a_checkout_finds_its_sources_and_keeps_its_state_beside_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert config.source_root() == CHECKOUT
    assert config.checkout_root() == CHECKOUT
    monkeypatch.delenv("LAKE_HOME", raising=False)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert config.lake_home() == CHECKOUT / ".lake"
    monkeypatch.setenv("LAKE_HOME", "/srv/lake")
    assert config.lake_home() == Path("/srv/lake")


@pytest.mark.fast
def test_an_installed_lake_keeps_its_state_in_the_xdg_data_dir_or_var_lib(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The real installed case runs in test_a_wheel_installs_and_runs_without_the_checkout;
    # here each branch of the choice, as a wheel's lake_client sees it (no checkout).
    monkeypatch.setattr(config, "checkout_root", lambda: None)
    monkeypatch.delenv("LAKE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert config.lake_home() == tmp_path / ".local" / "share" / "datapunk-lake"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert config.lake_home() == tmp_path / "data" / "datapunk-lake"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/data")  # invalid by the XDG spec: ignored
    assert config.lake_home() == tmp_path / ".local" / "share" / "datapunk-lake"
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert config.lake_home() == Path("/var/lib/datapunk-lake")


@pytest.mark.fast
def test_lake_version_prints_the_installed_version() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "lake_client.cli", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert out.split() == ["lake", "(datapunk-lake)", VERSION]


@pytest.mark.fast
def test_the_license_is_the_one_pyproject_names() -> None:
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    text = (CHECKOUT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text


@pytest.fixture
def outside() -> Iterator[Path]:
    """A folder under /tmp, far from the checkout, that the postgres OS user can traverse."""
    folder = server_folder("lake-wheel-")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _run(argv: list[str], cwd: Path, env: dict[str, str], timeout: int = 600) -> str:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{argv} exited {done.returncode}:\n{done.stdout}{done.stderr}"
    return done.stdout


@pytest.mark.slow
def test_a_wheel_installs_and_runs_without_the_checkout(outside: Path) -> None:
    # Built from a copy of what the wheel is made of, so that nothing of the checkout (a stale
    # build/, an egg-info) leaks in and the checkout stays as it is.
    source = outside / "source"
    for name in DISTRIBUTED:
        path = CHECKOUT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            source.mkdir(exist_ok=True)
            shutil.copy2(path, source / name)
    # No PYTHONPATH, no lake settings of the caller's: the installed lake finds everything alone.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PG", "LAKE_", "VIRTUAL_ENV")) and k != "PYTHONPATH"
    }
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    _run([*pip, "wheel", "--no-deps", "-w", str(outside / "dist"), str(source)], outside, env)
    (wheel,) = (outside / "dist").glob("datapunk_lake-*.whl")
    venv = outside / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], outside, env)
    # Dependencies from the package index; pip's cache makes a second run quick. No byte
    # compilation of every dependency: Python compiles what the commands import.
    install = [str(venv / "bin" / "pip"), "install", "--quiet", "--no-compile", str(wheel)]
    _run(install, outside, env)
    shutil.rmtree(source)

    run = outside / "run"  # the working directory: no checkout in it or above it
    run.mkdir()
    where = _run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import lake_client.config as c; print(c.__file__); print(c.source_root()); "
            "print(c.checkout_root()); print(c.lake_home()); "
            "from lake_client.local.monitoring import config_dir as m; "
            "print((m() / 'rules' / 'lake.rules.yml').is_file()); "
            "from importlib.resources import files; "
            "print(files('lake_client').joinpath('static', 'status.html').is_file()"
            " and (m() / 'grafana' / 'lake-dashboard.json').is_file())",
        ],
        run,
        env,
    ).split("\n")
    site = str(venv / "lib")
    assert where[0].startswith(site) and where[1].startswith(site), where
    assert where[2] == "None"
    data_home = "/var/lib/datapunk-lake" if os.geteuid() == 0 else str(Path.home() / ".local/share")
    assert where[3].startswith(data_home), where
    assert where[4] == "True", where  # the monitoring configuration travels with the wheel
    assert where[5] == "True", where  # and the status page's files, the Grafana dashboard

    pg_port, redis_port = free_ports(2)
    env.update(
        LAKE_HOME=str(outside / "home"),
        LAKE_PG_PORT=str(pg_port),
        LAKE_REDIS_PORT=str(redis_port),
        COLUMNS="300",  # the demo's summary on one line
    )
    lake = str(venv / "bin" / "lake")
    version = _run([lake, "--version"], run, env)
    assert version.split()[-1] == VERSION
    try:
        _run([lake, "up"], run, env)
        _run([lake, "migrate"], run, env)
        day = datetime.now(UTC).date()
        out = _run([lake, "demo", "--records", "2000"], run, env)
        got = re.search(
            r"Received 2,000 records: accepted ([\d,]+), archived ([\d,]+), quarantined ([\d,]+)",
            out,
        )
        assert got is not None, out
        accepted, archived, quarantined = (int(n.replace(",", "")) for n in got.groups())
        # A clock reset to 1970 is history to the lake: archived in its month, not refused.
        assert accepted > 0 and quarantined > 0 and archived > 0
        assert accepted + archived + quarantined == 2000
        assert "received = accepted + archived + quarantined: yes" in out
        # PostGIS 3.4 or newer (Debian 12's package is 3.3: setup-debian.sh builds 3.5 there).
        postgis = re.search(r"PostGIS (\d+)\.(\d+)\.\S+: alice has [\d,]+ points within", out)
        assert postgis is not None, out
        assert (int(postgis[1]), int(postgis[2])) >= (3, 4)
        dsn = f"host={outside / 'home' / 'run'} port={pg_port} user=postgres dbname=lake"
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT count(*) FROM user_data.location_history").fetchone() == (
                accepted,
            )
            assert conn.execute("SELECT count(*) FROM lake.quarantine").fetchone() == (quarantined,)
            assert conn.execute(
                "SELECT sum(rows) FROM lake.archives WHERE status = 'dropped'"
            ).fetchone() == (archived,)
        # Run again the same day (the demo's data is the day's): every batch is recognised, the
        # summary says nothing new instead of a rate, and nothing is stored twice.
        again = _run([lake, "demo", "--records", "2000"], run, env)
        if datetime.now(UTC).date() != day:  # midnight passed: the next run repeats this one
            again = _run([lake, "demo", "--records", "2000"], run, env)
        assert "(nothing new)" in again and "were ingested by an earlier run and skipped" in again
    finally:
        _run([lake, "down"], run, env)
