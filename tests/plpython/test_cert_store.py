"""plpython/lake_certs/store.py outside the database: the tls folder, renewal of what is due,
atomic writes, services' certificates and the issuer as sslinfo reads it."""

from __future__ import annotations

import datetime as dt
import os
import stat
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plpython"))

import lake_certs as certs
from lake_certs import store

pytestmark = pytest.mark.fast  # needs no server (tests/conftest.py)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A tls folder as `lake up` leaves it: the CA, postgres' and redis' certificates."""
    ca = certs.create_ca("test CA")
    (tmp_path / "ca.crt").write_bytes(ca.cert_pem)
    (tmp_path / "ca.key").write_bytes(ca.key_pem)
    for name in ("postgres", "redis"):
        pair = certs.issue(ca, name, days=certs.SERVER_DAYS, server_names=["localhost", "::1"])
        (tmp_path / f"{name}.crt").write_bytes(pair.cert_pem)
        (tmp_path / f"{name}.key").write_bytes(pair.key_pem)
    # Not server certificates of this CA: a stray file, another CA's, a cert without its key.
    other = certs.create_ca("other")
    foreign = certs.issue(other, "x", days=30, server_names=["localhost"])
    (tmp_path / "foreign.crt").write_bytes(foreign.cert_pem)
    (tmp_path / "foreign.key").write_bytes(foreign.key_pem)
    (tmp_path / "lonely.crt").write_bytes(foreign.cert_pem)
    (tmp_path / "notes.txt").write_text("hello")
    return tmp_path


def test_the_folder_is_beside_the_data_directory_unless_set() -> None:
    assert store.tls_root("", "/srv/lake/pg") == "/srv/lake/tls"
    assert store.tls_root("/etc/lake/tls", "/srv/lake/pg") == "/etc/lake/tls"
    with pytest.raises(ValueError, match="absolute"):
        store.tls_root("tls", "/srv/lake/pg")


def test_a_renewal_keeps_a_certificate_that_is_a_clients_too(folder: Path) -> None:
    """A Redis Cluster node's certificate (lake_client.local.redis_cluster: the cluster bus asks
    each node for a client certificate) is still a client's after its renewal."""
    ca = store.load_ca(str(folder))
    pair = certs.issue(
        ca, "redis-cluster", days=certs.SERVER_DAYS, server_names=["localhost"], client=True
    )
    (folder / "redis-cluster.crt").write_bytes(pair.cert_pem)
    (folder / "redis-cluster.key").write_bytes(pair.key_pem)
    assert certs.client_usage(pair.cert_pem)
    renewed = store.renew_servers(str(folder), dt.datetime.now(dt.UTC), force=True)
    assert "redis-cluster" in [r["name"] for r in renewed]
    new = (folder / "redis-cluster.crt").read_bytes()
    assert new != pair.cert_pem and certs.client_usage(new)
    assert certs.server_names(new) == ["localhost"]
    assert not certs.client_usage((folder / "postgres.crt").read_bytes())


def test_only_what_is_due_is_renewed_and_it_keeps_its_names(folder: Path) -> None:
    ca = store.load_ca(str(folder))
    assert store.server_certs(str(folder), ca.cert_pem) == ["postgres", "redis"]
    now = dt.datetime.now(dt.UTC)
    assert store.renew_servers(str(folder), now) == []
    old = certs.info((folder / "postgres.crt").read_bytes())
    renewed = store.renew_servers(str(folder), now + dt.timedelta(days=25))
    assert [r["name"] for r in renewed] == ["postgres", "redis"]
    new_pem = (folder / "postgres.crt").read_bytes()
    new = certs.info(new_pem)
    assert renewed[0]["old_serial"] == str(old.serial) != str(new.serial)
    assert renewed[0]["new_serial"] == str(new.serial)
    assert certs.signed_by(new_pem, ca.cert_pem)
    assert certs.server_names(new_pem) == ["localhost", "::1"]
    assert new.common_name == "postgres"
    assert stat.S_IMODE((folder / "postgres.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((folder / "postgres.crt").stat().st_mode) == 0o644
    assert not [p for p in os.listdir(folder) if p.endswith(".tmp")]
    # The new key belongs to the new certificate.
    key = serialization.load_pem_private_key((folder / "postgres.key").read_bytes(), None)
    assert x509.load_pem_x509_certificate(new_pem).public_key() == key.public_key()
    # Forced: every one, due or not.
    assert len(store.renew_servers(str(folder), now, force=True)) == 2


def test_a_folder_without_the_cas_key_renews_nothing(tmp_path: Path) -> None:
    assert store.renew_servers(str(tmp_path), dt.datetime.now(dt.UTC), force=True) == []


def test_a_services_certificate_names_its_issuer_as_sslinfo_does(folder: Path) -> None:
    issued = store.issue_service(str(folder), "gw")
    cert = str(issued["certificate"]).encode()
    assert certs.info(cert).common_name == "gw"
    assert certs.signed_by(cert, (folder / "ca.crt").read_bytes())
    assert issued["issuer"] == "/O=Datapunk Lake/OU=certificate authority/CN=test CA"
    assert int(str(issued["serial"])) == certs.info(cert).serial
    life = certs.info(cert).not_after - certs.info(cert).not_before
    assert life == dt.timedelta(days=certs.SERVICE_DAYS)
