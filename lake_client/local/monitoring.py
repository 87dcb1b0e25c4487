"""The monitoring stack (`lake up --monitoring`): Debian's Prometheus, Alertmanager and the
PostgreSQL, Redis and node exporters, plus `lake serve`, on private ports, configured from the
files in the repository's monitoring/ folder (written into <folder> with the ports filled in).

Each process writes its pid to <folder>/run/<name>.pid and its output to <folder>/log/<name>.log;
``stop`` ends them by those pids. Ports are chosen free at the first start and kept in
<folder>/ports.json, so that a restart keeps its addresses.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import string
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit, urlunsplit

from lake_client.config import Settings, load_settings, source_root
from lake_client.errors import ClusterError
from lake_client.transport import client_context

RETENTION = "30d"
NAMES = ("lake", "postgres_exporter", "redis_exporter", "node_exporter", "alertmanager",
         "prometheus")  # fmt: skip
BINARIES = {
    "postgres_exporter": "prometheus-postgres-exporter",
    "redis_exporter": "prometheus-redis-exporter",
    "node_exporter": "prometheus-node-exporter",
    "alertmanager": "prometheus-alertmanager",
    "prometheus": "prometheus",
}
READY_TIMEOUT_S = 30.0


def config_dir() -> Path:
    """The repository's monitoring/ folder (in a wheel: lake_client/monitoring)."""
    return source_root() / "monitoring"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def exporter_redis_args(url: str) -> list[str]:
    """The redis exporter's flags for a redis-py URL: the exporter reads no query string, so the
    CA that the URL names (``ssl_ca_certs``, as the lake's own URL does) becomes its flag."""
    parts = urlsplit(url)
    ca = parse_qs(parts.query).get("ssl_ca_certs")
    args = [f"-redis.addr={urlunsplit(parts._replace(query=''))}"]
    return args + ([f"-tls-ca-cert-file={ca[0]}"] if ca else [])


@dataclass
class Stack:
    """Where the stack lives and how it is configured (intervals as Prometheus durations)."""

    folder: Path
    dsn: str
    redis_url: str
    ca_file: Path  # the lake's CA: `lake serve` speaks HTTPS with a certificate it signed
    scrape_interval: str = "15s"
    evaluation_interval: str = "15s"
    webhook_url: str = "http://127.0.0.1:9/"  # discard: set a real receiver
    group_wait: str = "30s"
    ports: dict[str, int] = field(default_factory=dict)

    def port(self, name: str) -> int:
        return self.ports[name]

    def url(self, name: str) -> str:
        scheme = "https" if name == "lake" else "http"
        return f"{scheme}://127.0.0.1:{self.ports[name]}"

    def _load_ports(self) -> None:
        saved = self.folder / "ports.json"
        if saved.exists():
            self.ports = json.loads(saved.read_text())
        for name in NAMES:
            self.ports.setdefault(name, _free_port())
        saved.write_text(json.dumps(self.ports))

    def _write_configs(self) -> tuple[Path, Path]:
        rules = self.folder / "lake.rules.yml"
        rules.write_text((config_dir() / "rules" / "lake.rules.yml").read_text())
        prom = self.folder / "prometheus.yml"
        prom.write_text(
            string.Template((config_dir() / "prometheus.yml.in").read_text()).substitute(
                scrape_interval=self.scrape_interval,
                evaluation_interval=self.evaluation_interval,
                rules=rules,
                ca_file=self.ca_file,
                **{f"{name}_port": port for name, port in self.ports.items()},
            )
        )
        am = self.folder / "alertmanager.yml"
        am.write_text(
            string.Template((config_dir() / "alertmanager.yml.in").read_text()).substitute(
                webhook_url=self.webhook_url,
                group_wait=self.group_wait,
                group_interval=self.group_wait,
            )
        )
        return prom, am

    def _argv(self, name: str, prom: Path, am: Path) -> tuple[list[str], dict[str, str]]:
        at = f"127.0.0.1:{self.ports[name]}"
        env = dict(os.environ)
        if name == "lake":
            argv = [sys.executable, "-m", "lake_client.cli", "serve", "--port", at.split(":")[1]]
            env.update(LAKE_DSN=self.dsn, LAKE_REDIS_URL=self.redis_url)
        elif name == "postgres_exporter":
            argv = [BINARIES[name], f"--web.listen-address={at}"]
            env["DATA_SOURCE_NAME"] = self.dsn
        elif name == "redis_exporter":
            argv = [
                BINARIES[name],
                f"-web.listen-address={at}",
                *exporter_redis_args(self.redis_url),
            ]
        elif name == "node_exporter":
            argv = [BINARIES[name], f"--web.listen-address={at}"]
        elif name == "alertmanager":
            argv = [
                BINARIES[name],
                f"--config.file={am}",
                f"--storage.path={self.folder / 'alertmanager'}",
                f"--web.listen-address={at}",
                "--cluster.listen-address=",  # one instance: no gossip port
            ]
        else:
            argv = [
                BINARIES[name],
                f"--config.file={prom}",
                f"--storage.tsdb.path={self.folder / 'prometheus'}",
                f"--storage.tsdb.retention.time={RETENTION}",
                f"--web.listen-address={at}",
            ]
        return argv, env

    def start(self) -> None:
        """Start every process that is not running yet; wait until each answers HTTP."""
        for sub in ("run", "log"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        self._load_ports()
        prom, am = self._write_configs()
        for name in NAMES:
            if self.pid(name) is not None:
                continue
            argv, env = self._argv(name, prom, am)
            with open(self.folder / "log" / f"{name}.log", "ab") as log:
                try:
                    proc = subprocess.Popen(
                        argv, stdout=log, stderr=log, env=env, start_new_session=True
                    )
                except FileNotFoundError as exc:
                    raise ClusterError(
                        f"{argv[0]} is not installed",
                        hint="run `sudo docker/setup-debian.sh` (it installs the monitoring stack)",
                    ) from exc
            (self.folder / "run" / f"{name}.pid").write_text(str(proc.pid))
        for name in NAMES:
            self._wait_ready(name)

    def _wait_ready(self, name: str) -> None:
        path = {"lake": "/health/live", "prometheus": "/-/ready", "alertmanager": "/-/ready"}
        url = self.url(name) + path.get(name, "/metrics")
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            try:
                context = client_context(self.ca_file) if name == "lake" else None
                with urllib.request.urlopen(url, timeout=2, context=context):
                    return
            except (urllib.error.URLError, OSError):
                if self.pid(name) is None or time.monotonic() > deadline:
                    log = (self.folder / "log" / f"{name}.log").read_text(errors="replace")
                    raise ClusterError(
                        f"{name} did not start on port {self.ports[name]}",
                        hint="its log ends: " + log[-600:],
                    ) from None
                time.sleep(0.2)

    def pid(self, name: str) -> int | None:
        """The pid of a running process of the stack, else None."""
        pidfile = self.folder / "run" / f"{name}.pid"
        try:
            pid = int(pidfile.read_text())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        try:  # a zombie child (started by this process, exited) is not running
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return None
        except ChildProcessError:
            pass
        return pid

    def stop(self) -> None:
        """End the stack's processes (by their recorded pids)."""
        for name in reversed(NAMES):
            pid = self.pid(name)
            if pid is not None:
                os.kill(pid, signal.SIGTERM)
                for _ in range(50):
                    if self.pid(name) is None:
                        break
                    time.sleep(0.1)
            (self.folder / "run" / f"{name}.pid").unlink(missing_ok=True)


def for_settings(settings: Settings | None = None) -> Stack:
    """The stack of `lake up --monitoring`: under LAKE_HOME/monitoring, for the lake's database
    and Redis, alerts to LAKE_ALERT_WEBHOOK when set."""
    s = settings if settings is not None else load_settings()
    stack = Stack(
        folder=s.home / "monitoring", dsn=s.dsn(), redis_url=s.redis_url(), ca_file=s.ca_file
    )
    webhook = os.environ.get("LAKE_ALERT_WEBHOOK", "").strip()
    if webhook:
        stack.webhook_url = webhook
    return stack


def up(settings: Settings | None = None) -> Stack:
    """Start the stack (what runs already is left running) and return it."""
    stack = for_settings(settings)
    stack.start()
    return stack


def down(settings: Settings | None = None) -> None:
    """Stop the stack if it runs; fine if it never ran."""
    stack = for_settings(settings)
    if (stack.folder / "run").is_dir():
        stack.stop()
