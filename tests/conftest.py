"""Shared fixtures: a fresh store per test, on every backend the contract tests cover."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

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
