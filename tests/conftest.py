"""Shared fixtures: a fresh store per test, on every backend the contract tests cover."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

BACKENDS = ["local", "memory"]
if os.environ.get("MODELTRACK_TEST_S3", "1") != "0":
    BACKENDS.append("s3")


@pytest.fixture(autouse=True)
def _isolate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every test gets its own default store, cache and strict mode; nothing leaks out."""
    monkeypatch.setenv("MODELTRACK_STORE", str(tmp_path / "default-store"))
    monkeypatch.setenv("MODELTRACK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MODELTRACK_STRICT", "1")
    monkeypatch.delenv("MODELTRACK_AUTOLOG", raising=False)
    monkeypatch.delenv("MODELTRACK_MODEL", raising=False)


@pytest.fixture
def store_uri(tmp_path: Path) -> str:
    """A local store directory that does not exist yet."""
    return str(tmp_path / "store")


@pytest.fixture(params=[b for b in BACKENDS if b != "memory"])
def shared_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh store that several processes can share (local, and S3 on loopback)."""
    if request.param == "local":
        yield str(tmp_path / "store")
    else:
        yield request.getfixturevalue("s3_server").new_store_uri()


@pytest.fixture(params=BACKENDS)
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty store URI on each backend (local, memory, and S3 on loopback)."""
    if request.param == "local":
        yield str(tmp_path / "store")
    elif request.param == "memory":
        yield f"memory://{uuid.uuid4().hex}"
    else:
        s3 = request.getfixturevalue("s3_server")
        yield s3.new_store_uri()


def _mount_tmpfs(path: Path, options: str) -> bool:
    import subprocess

    path.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    return res.returncode == 0


def _umount(path: Path) -> None:
    import subprocess

    subprocess.run(["umount", "-l", str(path)], capture_output=True)


@pytest.fixture
def readonly_dir(tmp_path: Path) -> Iterator[Path]:
    """A real read-only directory: a read-only tmpfs as root, else a 0o555 directory."""
    path = tmp_path / "readonly"
    if os.geteuid() == 0:
        if not _mount_tmpfs(path, "ro,size=1m"):
            pytest.skip("cannot mount a read-only tmpfs here (needs CAP_SYS_ADMIN)")
        try:
            yield path
        finally:
            _umount(path)
    else:
        path.mkdir()
        path.chmod(0o555)
        try:
            yield path
        finally:
            path.chmod(0o755)


@pytest.fixture
def full_dir(tmp_path: Path) -> Iterator[Path]:
    """A real directory on a tiny (256 KiB) file system, to fill up."""
    path = tmp_path / "full"
    if os.geteuid() != 0 or not _mount_tmpfs(path, "size=256k"):
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield path
    finally:
        _umount(path)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[Any]:
    """A real S3-compatible server (moto) on 127.0.0.1 for the whole session, with boto3
    pointed at it through the standard AWS environment variables (dummy credentials; no
    AWS config file of the machine is read). ``new_store_uri()`` gives a fresh store;
    ``stop()``/``start()`` simulate an outage on the same port."""
    pytest.importorskip("boto3")
    pytest.importorskip("moto")
    from s3server import S3Server

    server = S3Server().launch()
    with pytest.MonkeyPatch.context() as mp:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
            mp.delenv(name, raising=False)
        mp.setenv("AWS_CONFIG_FILE", os.devnull)
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        for name, value in server.env().items():
            mp.setenv(name, value)
        try:
            server.create_bucket()
            yield server
        finally:
            server.shutdown()
