"""Whether a directory sits on an encrypted block device (dm-crypt, e.g. LUKS).

The lake cannot set up LUKS itself (that needs root and a block device); ``lake status`` reports
what the data, archive and Redis directories sit on, so an operator sees at a glance that the
data at rest is, or is not, encrypted. Read from sysfs: the filesystem's device number leads to
``/sys/dev/block/MAJ:MIN``; a device-mapper device whose ``dm/uuid`` starts with ``CRYPT-`` is
dm-crypt, and a device built on others (LVM, RAID, a partition's disk) is encrypted when every
device under it is.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

SYSFS_BLOCK = Path("/sys/dev/block")


class AtRest(NamedTuple):
    """``encrypted``: True, False, or None when it cannot be told (no block device behind it)."""

    encrypted: bool | None
    device: str  # e.g. "dm-0 (CRYPT-LUKS2-…)", "vda", "0:45 (no block device: overlay, tmpfs)"

    def describe(self) -> str:
        if self.encrypted is None:
            return f"unknown: {self.device}"
        return f"{'encrypted' if self.encrypted else 'NOT encrypted'} ({self.device})"


def _crypt_in(dev: Path, seen: set[Path]) -> tuple[bool, str]:
    """Whether block device ``dev`` (a sysfs directory) is dm-crypt or built only on dm-crypt."""
    dev = dev.resolve()
    if dev in seen:
        return False, dev.name
    seen.add(dev)
    uuid_file = dev / "dm" / "uuid"
    if uuid_file.is_file():
        uuid = uuid_file.read_text().strip()
        if uuid.startswith("CRYPT-"):
            return True, f"{dev.name} ({uuid.split('-', 2)[1] if '-' in uuid else uuid})"
    slaves = sorted((dev / "slaves").glob("*")) if (dev / "slaves").is_dir() else []
    if not slaves and (dev / "partition").is_file():
        slaves = [dev.parent]  # a partition: its whole disk
    if not slaves:
        return False, dev.name
    found = [_crypt_in(s, seen) for s in slaves]
    ok = all(enc for enc, _ in found)
    return ok, f"{dev.name} on " + ", ".join(name for _, name in found)


def check(path: Path, sysfs_block: Path = SYSFS_BLOCK) -> AtRest:
    """What ``path`` (or its nearest existing parent) sits on."""
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        st = os.stat(p)
    except OSError as e:
        return AtRest(None, f"cannot stat {p}: {e.strerror}")
    major, minor = os.major(st.st_dev), os.minor(st.st_dev)
    dev = sysfs_block / f"{major}:{minor}"
    if major == 0 or not dev.exists():
        return AtRest(None, f"{major}:{minor} is no block device (overlay, tmpfs, network)")
    encrypted, name = _crypt_in(dev, set())
    return AtRest(encrypted, name)
