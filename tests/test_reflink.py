"""The copy-on-write path, on a real reflink file system: an XFS image mounted on a loop
device (needs root, the kernel's XFS and ``mkfs.xfs`` from xfsprogs, which ``.ci/run``
installs). ext4, where the rest of the suite runs, has no reflinks, so there a checkpoint
rewritten in place before the writer stores it is reported as not recorded; here the
reflink taken by ``log_artifact`` is a private snapshot and every logged version is stored."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import modeltrack as mt
from modeltrack.files import copy_file, reflink


@pytest.fixture(scope="module")
def xfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("mounting a loop file system needs root")
    mkfs = shutil.which("mkfs.xfs")
    if mkfs is None:
        pytest.skip("mkfs.xfs (xfsprogs) is not installed: `apt-get install xfsprogs`")
    base = tmp_path_factory.mktemp("xfs")
    image, mnt = base / "xfs.img", base / "mnt"
    mnt.mkdir()
    with open(image, "wb") as f:
        f.truncate(512 * 1024 * 1024)  # sparse; XFS needs at least 300 MB
    made = subprocess.run([mkfs, "-q", "-m", "reflink=1", str(image)], capture_output=True, text=True)
    if made.returncode:
        pytest.skip(f"mkfs.xfs failed: {made.stderr.strip()[:200]}")
    mounted = subprocess.run(["mount", "-o", "loop", str(image), str(mnt)], capture_output=True, text=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a loop device here: {mounted.stderr.strip()[:200]}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


def test_reflink_and_copy_file_make_independent_copies(xfs: Path) -> None:
    src, dst, other = xfs / "a.bin", xfs / "b.bin", xfs / "c.bin"
    data = os.urandom(3 * 1024 * 1024)
    src.write_bytes(data)
    assert reflink(src, dst)  # O(1): a clone, not a copy
    assert copy_file(src, other) == len(data)
    with open(src, "r+b") as f:  # rewritten in place after the clone
        f.write(b"X" * 4096)
    assert dst.read_bytes() == data and other.read_bytes() == data


def test_a_checkpoint_rewritten_in_place_right_after_logging_is_stored_as_logged(
    xfs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MODELTRACK_STRICT", raising=False)  # the asynchronous path
    from modeltrack import tracking

    store = xfs / f"store-{uuid.uuid4().hex[:6]}"
    path = xfs / "last.ckpt"
    size = 2 * 1024 * 1024
    versions = [os.urandom(size) for _ in range(6)]
    path.write_bytes(versions[0])
    held: list[bool] = []
    real = tracking.Version._hold

    def spy(self: tracking.Version, item: tracking._ArtifactFile, *, owned: bool) -> bool:
        ok = real(self, item, owned=owned)
        held.append(item.private)
        return ok

    monkeypatch.setattr(tracking.Version, "_hold", spy)
    with mt.start("m", store=str(store)) as v:
        for i in range(5):
            v.log_artifact(path, kind="checkpoint", name=f"epoch-{i}.ckpt", epoch=i)
            with open(path, "r+b") as f:  # in place, at once: the writer has not run yet
                f.write(versions[i + 1])
    assert held == [True] * 5  # each hold was a reflink: a private snapshot
    rec = mt.show("m", store=str(store))
    assert not rec.get("info", {}).get("not_recorded")
    stored = {a["path"]: a["sha256"] for a in rec["artifacts"] if a["kind"] == "checkpoint"}
    assert stored == {f"epoch-{i}.ckpt": hashlib.sha256(versions[i]).hexdigest() for i in range(5)}
    assert mt.verify(store=str(store))["ok"]
    assert not list(store.rglob(".*.tmp"))  # no held clone left behind
