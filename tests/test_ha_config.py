"""The configuration of a highly available lake, without servers: Patroni's parameters are the
lake's settings (one definition), replication is synchronous and over TLS, the ports of `lake up
--replicas` follow their rule, and the DSN asks for the writable node."""

from __future__ import annotations

from pathlib import Path

import pytest

from lake_client.config import Settings, ha_ports
from lake_client.errors import ClusterError
from lake_client.local import ha, postgres
from lake_client.local.processes import Paths

pytestmark = pytest.mark.fast


def _settings(home: Path, port: int = 40000) -> Settings:
    return Settings(
        home=home,
        pg_port=port,
        redis_port=40100,
        database="lake",
        external_dsn=None,
        external_redis=None,
    )


def test_patroni_takes_every_setting_of_lake_conf(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    (tmp_path / "secrets").mkdir()
    layout = ha.derived_layout(s, 2)
    config = ha.patroni_config(s, layout, 1, Path("/usr/lib/postgresql/15/bin"))
    store = config["bootstrap"]["dcs"]["postgresql"]["parameters"]
    local = config["postgresql"]["parameters"]
    assert not store.keys() & local.keys()
    given = store | local
    for name, value in postgres.server_settings(s, Paths(tmp_path), layout.log_dir(1)):
        if name in ("port", "listen_addresses"):  # Patroni's own keys
            continue
        assert given[name] == postgres.unquote_conf(value), name
    assert given["shared_preload_libraries"] == "pg_cron,timescaledb"
    assert given["ssl_min_protocol_version"] == "TLSv1.3"
    assert given["log_directory"] == str(tmp_path / "log" / "pg1")
    assert config["postgresql"]["listen"] == f"127.0.0.1:{layout.pg_ports[1]}"
    assert config["bootstrap"]["dcs"]["synchronous_mode"] is True
    replication = config["postgresql"]["authentication"]["replication"]
    assert replication["sslmode"] == "verify-full"
    assert replication["username"] == ha.REPLICATION_USER
    hba = config["postgresql"]["pg_hba"]
    assert f"hostssl replication {ha.REPLICATION_USER} 127.0.0.1/32 scram-sha-256" in hba
    assert not any(line.startswith("host ") for line in hba)  # TCP is TLS only, as on one server


def test_the_ports_of_lake_up_replicas_follow_their_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ha.HA_PORT_ENV, raising=False)
    layout = ha.derived_layout(_settings(tmp_path, 40000), 2)
    assert layout.pg_ports == (40000, 40010, 40011)
    assert layout.rest_ports == (40020, 40021, 40022)
    assert layout.etcd_ports == (40030, 40031)
    monkeypatch.setenv(ha.HA_PORT_ENV, "50000")
    layout = ha.derived_layout(_settings(tmp_path, 40000), 1)
    assert layout.pg_ports == (40000, 50000)
    assert layout.rest_ports == (50010, 50011)
    with pytest.raises(ClusterError, match="1 to 9 replicas"):
        ha.derived_layout(_settings(tmp_path), 0)


def test_the_dsn_names_every_node_and_asks_for_the_writable_one(tmp_path: Path) -> None:
    assert ha_ports(tmp_path) == ()
    (tmp_path / "ha").mkdir()
    (tmp_path / "ha" / "ports").write_text("40000 40010 40011\n")
    s = Settings(**{**_settings(tmp_path).__dict__, "ha_ports": ha_ports(tmp_path)})
    run = tmp_path / "run"
    assert s.dsn() == (
        f"host={run},{run},{run} port=40000,40010,40011 user=postgres dbname=lake "
        "target_session_attrs=read-write"
    )
    assert "target_session_attrs=prefer-standby" in ha.read_dsn(s)
    tcp = s.tcp_dsn()
    assert "host=127.0.0.1,127.0.0.1,127.0.0.1" in tcp and "port=40000,40010,40011" in tcp
    assert "target_session_attrs=read-write" in tcp
