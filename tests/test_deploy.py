"""The deployment (docker/) and `lake up --redis-cluster`.

There is no container engine on the project's machines, so the image and the compose file are
never run here. What is tested instead: the container's entrypoint (lake_client/entrypoint.py)
run directly against the real PostgreSQL and Redis; docker/compose.yaml against the Compose
Specification's JSON schema (vendored in docker/schema/, Apache-2.0: see its README), and for
what the schema cannot see; the
monitoring configuration with promtool and amtool; and the local Redis Cluster of `lake up
--redis-cluster`, started, used through lake_client.cache, failed over and stopped.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import time
import tomllib
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import psycopg
import pytest
import redis
from alembic.script import ScriptDirectory
from redis.cluster import RedisCluster
from ruamel.yaml import YAML

from lake_client import certs, local
from lake_client.cache import LakeCache
from lake_client.config import Settings, load_settings
from lake_client.entrypoint import ONE_SHOT, SERVING, main
from lake_client.local import redis_cluster, redis_server, tls
from lake_client.local.processes import Paths, server_user, write_private
from lake_client.migrate import alembic_config
from lake_client.transport import client_context
from tests.conftest import CHECKOUT, server_folder
from tests.redis_cluster import free_ports

DOCKER = CHECKOUT / "docker"
LAKE_HOME_IN_IMAGE = "/var/lib/datapunk-lake"
DOORS = ("serve", "bridge", "grpc")  # the lake's own processes: healthy when /health/ready is


def compose() -> dict[str, Any]:
    doc: dict[str, Any] = YAML(typ="safe").load((DOCKER / "compose.yaml").read_text())
    return doc


def schema_errors(doc: dict[str, Any]) -> list[str]:
    schema = json.loads((DOCKER / "schema" / "compose-spec.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    return sorted(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)
    )


def lake_services(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services that run the lake's image through its entrypoint (no entrypoint of theirs)."""
    return {
        name: service
        for name, service in doc["services"].items()
        if service.get("image") == "datapunk-lake:dev" and "entrypoint" not in service
    }


# -- docker/compose.yaml --------------------------------------------------------------------


@pytest.mark.fast
def test_the_compose_file_follows_the_compose_specification() -> None:
    assert schema_errors(compose()) == []


@pytest.mark.fast
def test_the_schema_check_finds_a_mistake() -> None:
    """The check above can fail: a misspelt key and a wrong type are found."""
    doc = compose()
    doc["services"]["db"]["healthchek"] = doc["services"]["db"].pop("healthcheck")
    doc["services"]["serve"]["ports"] = "9478"
    errors = schema_errors(doc)
    assert any("healthchek" in e for e in errors), errors
    assert any(e.startswith("services/serve/ports") for e in errors), errors


@pytest.mark.fast
def test_compose_runs_every_role_of_the_entrypoint() -> None:
    doc = compose()
    used = {service["command"][0] for service in lake_services(doc).values()}
    # migrate is for a database outside compose (the db and the doors migrate here); health
    # is what the healthchecks run.
    assert used == set(SERVING) | set(ONE_SHOT) - {"migrate", "health"}
    one_shots = {n for n, s in lake_services(doc).items() if s["command"][0] in ONE_SHOT}
    assert all(doc["services"][n]["restart"] == "no" for n in one_shots)


@pytest.mark.fast
def test_every_healthcheck_asks_the_entrypoint_and_the_doors_ask_health_ready() -> None:
    doc = compose()
    for name, service in doc["services"].items():
        if name in ("init", "redis-cluster-create"):
            assert "healthcheck" not in service, f"{name} is a one-shot"
            continue
        test = service["healthcheck"]["test"]
        assert test[:3] == ["CMD", "lake-entrypoint", "health"], name
        if name in DOORS:
            assert len(test) == 3, f"{name}: /health/ready (LAKE_HEALTH_URL)"
            url = service["environment"]["LAKE_HEALTH_URL"]
            assert re.fullmatch(r"https://[\w.-]+:9478/health/ready", url), (name, url)
    assert doc["services"]["serve"]["environment"]["LAKE_HEALTH_URL"].startswith(
        "https://127.0.0.1:"
    )


@pytest.mark.fast
def test_dependencies_name_services_and_wait_for_what_they_can() -> None:
    services = compose()["services"]
    for name, service in services.items():
        for other, how in service.get("depends_on", {}).items():
            assert other in services, f"{name} depends on a missing {other}"
            if how["condition"] == "service_healthy":
                assert "healthcheck" in services[other], f"{name} waits for {other}'s health"
            else:
                assert how["condition"] == "service_completed_successfully"
                assert services[other]["restart"] == "no", f"{other} is not a one-shot"
    for door in DOORS:
        depends = services[door]["depends_on"]
        assert depends["db"]["condition"] == "service_healthy"
        assert depends["redis-cluster-create"]["condition"] == "service_completed_successfully"


@pytest.mark.fast
def test_compose_has_a_redis_cluster_of_three_masters_with_a_replica_each() -> None:
    services = compose()["services"]
    nodes = {n: s for n, s in services.items() if s.get("command") == ["redis-node"]}
    assert len(nodes) == redis_cluster.NODES == 6
    assert redis_cluster.MASTERS == 3 and redis_cluster.REPLICAS_PER_MASTER == 1
    hosts = sorted(s["hostname"] for s in nodes.values())
    assert hosts == sorted(nodes), "each node's host name is its service's"
    data = [v.split(":")[0] for s in nodes.values() for v in s["volumes"] if "redis" in v]
    assert len(set(data)) == 6, "each node has a volume of its own"
    create = services["redis-cluster-create"]
    assert sorted(create["environment"]["LAKE_REDIS_NODES"].split(",")) == [
        f"{h}:6379" for h in hosts
    ]
    assert {n for n, c in create["depends_on"].items() if c["condition"] == "service_healthy"} == (
        set(nodes)
    )
    for door in DOORS:
        env = services[door]["environment"]
        assert env["LAKE_REDIS_CLUSTER"] == "1"
        assert env["LAKE_REDIS_URL"].startswith("rediss://redis-1:6379/")


@pytest.mark.fast
def test_compose_resources_and_volumes_are_the_specifications() -> None:
    doc = compose()
    db = doc["services"]["db"]
    assert db["deploy"]["resources"]["limits"] == {"cpus": "4", "memory": "8G"}
    assert db["deploy"]["resources"]["reservations"] == {"cpus": "2", "memory": "4G"}
    mounts = dict(v.split(":")[:2] for v in db["volumes"])
    assert mounts["pg-data"] == f"{LAKE_HOME_IN_IMAGE}/pg"  # local.processes.Paths.pg_data
    assert mounts["archive"] == f"{LAKE_HOME_IN_IMAGE}/lake_archive"  # Paths.archive
    sizes = {name: v["labels"]["datapunk.lake.size"] for name, v in doc["volumes"].items()}
    assert sizes["pg-data"] == "100GiB" and sizes["archive"] == "500GiB"
    assert doc["volumes"]["pg-data"]["labels"]["datapunk.lake.medium"] == "ssd"
    assert all(sizes[f"redis-{i}"] == "8GiB" for i in range(1, 7))


@pytest.mark.fast
def test_the_monitoring_configuration_of_compose_is_valid(tmp_path: Path) -> None:
    prom = (DOCKER / "prometheus.yml").read_text()
    rules = CHECKOUT / "monitoring" / "rules"
    checked = tmp_path / "prometheus.yml"
    checked.write_text(prom.replace("/etc/datapunk-lake/rules/", f"{rules}/"))
    for argv in (
        ["promtool", "check", "config", str(checked)],
        ["amtool", "check-config", str(DOCKER / "alertmanager.yml")],
    ):
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
    jobs = set(re.findall(r"job_name: (\w+)", prom))
    template = (CHECKOUT / "monitoring" / "prometheus.yml.in").read_text()
    assert jobs == set(re.findall(r"job_name: (\w+)", template)) and jobs


@pytest.mark.fast
def test_the_dockerfile_copies_what_the_build_reads() -> None:
    dockerfile = (DOCKER / "Dockerfile").read_text()
    copied = {
        part.rstrip("/")
        for line in re.findall(r"^COPY (?!--)(.+) \S+$", dockerfile, re.MULTILINE)
        for part in line.split()
    }
    pyproject = tomllib.loads((CHECKOUT / "pyproject.toml").read_text())
    needed = set(pyproject["tool"]["setuptools"]["package-dir"].values())
    needed |= {"pyproject.toml", "setup.py", "proto", "lake_client", "README.md", "LICENSE"}
    assert needed <= copied, f"not copied: {needed - copied}"
    assert "docker/setup-debian.sh" in copied
    assert 'ENTRYPOINT ["lake-entrypoint"]' in dockerfile
    assert re.search(r'HEALTHCHECK .*\\\n\s+CMD \["lake-entrypoint", "health"\]', dockerfile)
    scripts = pyproject["project"]["scripts"]
    assert scripts["lake-entrypoint"] == "lake_client.entrypoint:main"


# -- the entrypoint, run directly ----------------------------------------------------------


def entrypoint(
    *args: str, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`lake-entrypoint ARGS` as a process of its own, as a container runs it."""
    return subprocess.run(
        [sys.executable, "-m", "lake_client.entrypoint", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def entrypoint_here(*args: str, env: dict[str, str]) -> tuple[int, str]:
    """The same in this process (a second of start-up saved each time), with exactly ``env``
    and restored afterwards: the exit status and what it wrote to stderr."""
    err = io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        for key in list(os.environ):
            patch.delenv(key)
        for key, value in env.items():
            patch.setenv(key, value)
        with contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse: usage errors
                code = exc.code if isinstance(exc.code, int) else 1
    return code, err.getvalue()


@pytest.mark.fast
def test_an_unknown_role_is_a_usage_error_that_lists_the_roles() -> None:
    code, err = entrypoint_here("serv", env=dict(os.environ))
    assert code == 2
    assert "invalid choice: 'serv'" in err
    assert all(role in err for role in (*SERVING, *ONE_SHOT))


@pytest.mark.fast
def test_arguments_for_a_role_that_takes_none_are_a_usage_error() -> None:
    code, err = entrypoint_here("db", "--port", "5432", env=dict(os.environ))
    assert code == 2 and "the db role takes no arguments" in err


@pytest.mark.fast
def test_a_database_that_does_not_answer_is_a_clear_error(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    env = {
        **os.environ,
        "LAKE_HOME": str(tmp_path),
        "LAKE_DSN": f"host=127.0.0.1 port={port} user=postgres dbname=lake connect_timeout=1",
        "LAKE_WAIT_S": "1",
    }
    result = entrypoint("serve", env=env)  # a process of its own: what a container shows
    assert result.returncode == 1
    assert "lake-entrypoint: error: the database did not answer within 1 s" in result.stderr
    assert "hint: check LAKE_DSN" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.fast
def test_a_missing_password_file_is_a_clear_error(tmp_path: Path) -> None:
    env = {**os.environ, "LAKE_PG_PASSWORD_FILE": str(tmp_path / "absent")}
    code, err = entrypoint_here("migrate", env=env)
    assert code == 1
    assert f"LAKE_PG_PASSWORD_FILE={tmp_path / 'absent'}: cannot read it" in err


def _ready(url: str, ca: Path) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2, context=client_context(ca)) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


class Role:
    """`lake-entrypoint ROLE` in the background, its output in a file."""

    def __init__(self, folder: Path, env: dict[str, str], *args: str) -> None:
        self.log = folder / f"{args[0]}.log"
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "lake_client.entrypoint", *args],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def until(self, check: Callable[[], bool], timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            assert self.proc.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, self.log.read_text()
            time.sleep(0.2)

    def stop(self) -> int:
        """SIGTERM, as a container's stop sends it: the exit status."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(60)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def test_the_compose_roles_on_one_host(settings: Settings, tmp_path: Path) -> None:
    """init, db and serve as compose runs them, on loopback: `init` makes the CA and the
    secrets; `db` runs the embedded PostgreSQL (TLS on TCP) and migrates; `serve` reaches it
    over TLS with the password from its file, creates its database, migrates it, and answers
    /health/ready over HTTPS (what the image's HEALTHCHECK asks, through `lake-entrypoint
    health`); SIGTERM stops each cleanly (exit 0) and the health check then fails."""
    base = server_folder("lake-entry-")
    home = base / "home"
    pg_port, http_port = free_ports(2)
    url = f"https://127.0.0.1:{http_port}/health/ready"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "LAKE_"))}
    env |= {"LAKE_HOME": str(home), "LAKE_PG_PORT": str(pg_port), "LAKE_PG_LISTEN": "127.0.0.1"}
    door_env = env | {
        "LAKE_DSN": f"host=127.0.0.1 port={pg_port} user=postgres dbname=lake_served "
        f"sslmode=verify-full sslrootcert={home / 'tls' / 'ca.crt'}",
        "LAKE_PG_PASSWORD_FILE": str(home / "secrets" / "pg.password"),
        # the session's Redis (the redis-node roles are not run here: see the README)
        "LAKE_REDIS_URL": settings.redis_url(),
        "LAKE_HEALTH_URL": url,
    }
    roles: list[Role] = []
    try:
        code, err = entrypoint_here("init", env=env)
        assert code == 0, err
        db = Role(tmp_path, env, "db")
        roles.append(db)
        db.until(lambda: "schema migrated" in db.log.read_text())
        assert entrypoint_here("health", "db", env=env)[0] == 0

        serve = Role(tmp_path, door_env, "serve", "--port", str(http_port))
        roles.append(serve)
        serve.until(lambda: _ready(url, home / "tls" / "ca.crt"))
        assert "creating the database 'lake_served'" in serve.log.read_text()
        dsn = door_env["LAKE_DSN"] + f" password={(home / 'secrets' / 'pg.password').read_text()}"
        head = ScriptDirectory.from_config(alembic_config(dsn)).get_current_head()
        with psycopg.connect(dsn) as conn:
            row = conn.execute("SELECT version_num FROM public.alembic_version").fetchone()
        assert row == (head,)
        assert entrypoint("health", env=door_env).returncode == 0

        assert serve.stop() == 0, serve.log.read_text()
        code, err = entrypoint_here("health", env=door_env)
        assert code == 1 and f"unhealthy: {url}" in err
        assert db.stop() == 0, db.log.read_text()
        assert "PostgreSQL stopped" in db.log.read_text()
        assert entrypoint_here("health", "db", env=env)[0] == 1
    finally:
        for role in roles:
            role.kill()
        with contextlib.suppress(Exception):
            local.down(load_settings_for(env))
        shutil.rmtree(base, ignore_errors=True)


def load_settings_for(env: dict[str, str]) -> Settings:
    """The settings `lake-entrypoint` sees in ``env`` (to stop what a failed test left)."""
    with pytest.MonkeyPatch.context() as patch:
        for key in [k for k in os.environ if k.startswith(("PG", "LAKE_"))]:
            patch.delenv(key)
        for key, value in env.items():
            patch.setenv(key, value)
        return load_settings()


# -- `lake up --redis-cluster` ----------------------------------------------------------------


@pytest.fixture
def cluster_home(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A LAKE_HOME of the test's own whose Redis is the local cluster; PostgreSQL is the
    session's (LAKE_DSN), so only the cluster starts."""
    base = server_folder("lake-rc-home-")
    home = base / "home"
    monkeypatch.setenv("LAKE_HOME", str(home))
    monkeypatch.setenv("LAKE_DSN", settings.dsn())
    for variable in ("LAKE_REDIS_URL", "LAKE_REDIS_CLUSTER"):
        monkeypatch.delenv(variable, raising=False)
    try:
        yield home
    finally:
        local.down(load_settings())
        shutil.rmtree(base, ignore_errors=True)


def lake(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lake_client.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_lake_up_redis_cluster_serves_the_cache_then_lake_down_stops_it(
    cluster_home: Path,
) -> None:
    """Start, status, a write and a read through lake_client.cache, stop. (A master killed and
    its replica taking over: tests/test_cache.py, on a cluster of the same
    lake_client.local.redis_cluster.Cluster with a shorter node timeout.)"""
    started = lake("up", "--redis-cluster", "--json")
    assert started.returncode == 0, started.stderr
    assert json.loads(started.stdout)["redis_running"] is True
    s = load_settings()
    assert s.redis_cluster and s.external_redis is None
    ports = redis_cluster.local_cluster_ports(cluster_home)
    assert len(ports) == 6 and f":{ports[0]}/" in s.redis_url()

    # the lines that `lake status` prints
    status = "\n".join(local.status(s).lines()) + "\n"
    assert "Redis Cluster: ok (3 masters, 1 replica each)" in status
    assert status.count(": master\n") == 3 and status.count(": replica\n") == 3

    client = RedisCluster.from_url(s.redis_url())  # TLS 1.3, verified against the lake's CA
    cache = LakeCache(client, prefix=f"rc{uuid.uuid4().hex[:6]}")
    cache.put("steps", "alice", "today", {"steps": 42})
    assert cache.get("steps", "alice", "today") == {"steps": 42}
    assert len({client.get_node_from_key(f"k{i}").port for i in range(50)}) == 3
    client.close()
    with pytest.raises(redis.RedisError), redis.Redis(port=ports[0], socket_timeout=1) as plain:
        plain.ping()  # no plaintext port

    # A renewed certificate, as the database's server_certs job writes it (as the server's OS
    # user, key first; that it stays a client's: tests/plpython/test_cert_store.py): `lake
    # serve` has each node take it (local.reload_tls).
    rules, paths = certs.rules(), Paths(cluster_home)
    files, user = tls.files(paths), server_user(paths)
    ca = rules.Pair(files.ca_cert.read_bytes(), files.ca_key.read_bytes())
    names = ["127.0.0.1", "localhost"]
    pair = rules.issue(ca, "redis-cluster", days=30, server_names=names, client=True)
    write_private(files.key("redis-cluster"), pair.key_pem.decode(), user)
    write_private(files.cert("redis-cluster"), pair.cert_pem.decode(), user)
    assert redis_server.reload_tls(s)
    on_disk = ssl.PEM_cert_to_DER_cert(pair.cert_pem.decode())
    for port in ports:
        assert tls.served_certificate("127.0.0.1", port, s.ca_file) == on_disk
    assert not redis_server.reload_tls(s)  # nothing new
    client = RedisCluster.from_url(s.redis_url())
    assert LakeCache(client, prefix=cache.prefix).get("steps", "alice", "today") == {"steps": 42}
    client.close()

    local.down(s)  # what `lake down` does for it
    cluster = redis_cluster.for_settings(s)
    assert all(cluster.pid(p) is None for p in ports)
    assert "Redis Cluster: not running (3 masters, 1 replica each)" in local.status(s).lines()
    with pytest.raises(redis.RedisError), contextlib.closing(cluster.node(ports[0])) as node:
        node.ping()
