"""Encryption at rest: `lake status` tells whether the data, archive and Redis directories sit on
a dm-crypt device (LUKS cannot be set up in the test sandbox). The sysfs walk is checked against
sysfs trees shaped as the kernel shows dm-crypt, LVM on LUKS and plain disks; the real status
against the machine's own sysfs."""

from __future__ import annotations

import os
from pathlib import Path

from lake_client import local
from lake_client.config import Settings
from lake_client.local.at_rest import check


def device_tree(root: Path, spec: dict[str, dict[str, object]]) -> Path:
    """A /sys/devices/virtual/block-like tree: name -> {"uuid": dm uuid, "slaves": [names],
    "partition_of": disk name}."""
    devices = root / "devices"
    for name, props in spec.items():
        parent = props.get("partition_of")
        d = devices / str(parent) / name if parent else devices / name
        d.mkdir(parents=True, exist_ok=True)
        if parent:
            (d / "partition").write_text("1\n")
        if "uuid" in props:
            (d / "dm").mkdir()
            (d / "dm" / "uuid").write_text(f"{props['uuid']}\n")
    for name, props in spec.items():
        slaves = props.get("slaves")
        if isinstance(slaves, list):
            parent = props.get("partition_of")
            d = devices / str(parent) / name if parent else devices / name
            (d / "slaves").mkdir()
            for s in slaves:
                target = next(devices.rglob(s))
                (d / "slaves" / s).symlink_to(target)
    return devices


def sysfs_for(tmp_path: Path, spec: dict[str, dict[str, object]], mounted: str) -> Path:
    """A fake /sys/dev/block where tmp_path's own device number leads to device `mounted`."""
    devices = device_tree(tmp_path / "sys", spec)
    block = tmp_path / "sys" / "dev" / "block"
    block.mkdir(parents=True)
    st = os.stat(tmp_path)
    (block / f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}").symlink_to(
        next(devices.rglob(mounted))
    )
    return block


def test_a_luks_device_is_encrypted(tmp_path: Path) -> None:
    block = sysfs_for(
        tmp_path,
        {
            "sda": {},
            "sda2": {"partition_of": "sda"},
            "dm-0": {"uuid": "CRYPT-LUKS2-0b5e2b7c9f1e4d1c-luks-data", "slaves": ["sda2"]},
        },
        "dm-0",
    )
    found = check(tmp_path, block)
    assert found.encrypted is True
    assert found.describe() == "encrypted (dm-0 (LUKS2))"


def test_lvm_on_luks_is_encrypted_and_lvm_beside_a_plain_disk_is_not(tmp_path: Path) -> None:
    spec: dict[str, dict[str, object]] = {
        "sda": {},
        "sdb": {},
        "dm-0": {"uuid": "CRYPT-LUKS2-aa-cryptroot", "slaves": ["sda"]},
        "dm-1": {"uuid": "LVM-xyz", "slaves": ["dm-0"]},
        "dm-2": {"uuid": "LVM-abc", "slaves": ["dm-0", "sdb"]},
    }
    (tmp_path / "a").mkdir()
    on_luks = sysfs_for(tmp_path / "a", spec, "dm-1")
    assert check(tmp_path / "a", on_luks).encrypted is True
    (tmp_path / "b").mkdir()
    half = sysfs_for(tmp_path / "b", spec, "dm-2")
    found = check(tmp_path / "b", half)
    assert found.encrypted is False
    assert "sdb" in found.device


def test_a_plain_partition_is_not_encrypted(tmp_path: Path) -> None:
    block = sysfs_for(tmp_path, {"vda": {}, "vda1": {"partition_of": "vda"}}, "vda1")
    assert check(tmp_path, block).describe() == "NOT encrypted (vda1 on vda)"


def test_no_block_device_is_unknown() -> None:
    found = check(Path("/proc/self"))  # procfs: an anonymous device
    assert found.encrypted is None and found.describe().startswith("unknown")


def test_lake_status_reports_the_three_directories(settings: Settings) -> None:
    st = local.status(settings)
    assert set(st.at_rest) == ({"data", "archive", "redis"} if settings.embedded else set())
    if settings.embedded:
        home = settings.home
        assert st.at_rest["data"] == check(home / "pg").describe()
        assert st.at_rest["redis"] == check(home / "redis").describe()
        assert any(line.startswith("At rest") for line in st.lines())
