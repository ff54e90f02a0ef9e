"""The Store contract, run unchanged against every backend (local, memory, S3, GCS, Azure)."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from modeltrack.errors import KeyNotFound
from modeltrack.stores import open_store

# conftest's backends (not imported: tests/integrations has a conftest module of the same name)
BACKENDS = ["local", "memory", *(["s3"] if os.environ.get("MODELTRACK_TEST_S3", "1") != "0" else [])]
CLOUD = ["gcs", "azure"] if os.environ.get("MODELTRACK_TEST_CLOUD", "1") != "0" else []


@pytest.fixture(params=[*BACKENDS, *CLOUD])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """conftest's backends, plus GCS (fake-gcs-server) and Azure (Azurite) on loopback;
    each of those is skipped, saying why, where its emulator cannot run."""
    if request.param == "gcs":
        yield request.getfixturevalue("gcs_server").new_store_uri()
    elif request.param == "azure":
        yield request.getfixturevalue("azurite").new_store_uri()
    elif request.param == "local":
        yield str(tmp_path / "store")
    elif request.param == "memory":
        yield f"memory://{uuid.uuid4().hex}"
    else:
        yield request.getfixturevalue("s3_server").new_store_uri()


def test_write_read_overwrite(any_store: str) -> None:
    s = open_store(any_store)
    s.write("a/b/c.json", b"one")
    assert s.read("a/b/c.json") == b"one"
    s.write("a/b/c.json", b"two")
    assert s.read("a/b/c.json") == b"two"
    assert s.exists("a/b/c.json")
    assert not s.exists("a/b/missing")


def test_read_missing_raises_keynotfound(any_store: str) -> None:
    s = open_store(any_store)
    with pytest.raises(KeyNotFound):
        s.read("nope/x")


def test_create_only_if_absent(any_store: str) -> None:
    s = open_store(any_store)
    assert s.create("k/claim", b"first") is True
    assert s.create("k/claim", b"second") is False
    assert s.read("k/claim") == b"first"


def test_racing_creates_have_one_winner(any_store: str) -> None:
    s = open_store(any_store)
    wins: list[int] = []

    def attempt(i: int) -> None:
        if s.create("race/key", str(i).encode()):
            wins.append(i)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1
    assert s.read("race/key") == str(wins[0]).encode()


def test_list_direct_children(any_store: str) -> None:
    s = open_store(any_store)
    for key in ("m/v/1/a", "m/v/1/b", "m/v/2/a", "m/v/10/x/y", "m/other"):
        s.write(key, b"x")
    assert s.list("m/v") == ["1", "10", "2"]
    assert s.list("m") == ["other", "v"]
    assert s.list("m/v/1") == ["a", "b"]
    assert s.list("does/not/exist") == []


def test_walk_and_delete(any_store: str) -> None:
    s = open_store(any_store)
    for key in ("w/1/a", "w/1/b", "w/2/c"):
        s.write(key, b"x")
    assert sorted(s.walk("w")) == ["w/1/a", "w/1/b", "w/2/c"]
    s.delete("w/1/a")
    s.delete("w/1/a")  # absent keys are ignored
    assert sorted(s.walk("w")) == ["w/1/b", "w/2/c"]


def test_files_roundtrip_and_checksum(any_store: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import hashlib

    s = open_store(any_store)
    src = tmp_path / "blob.bin"
    payload = bytes(range(256)) * 4096
    src.write_bytes(payload)
    s.put_file("blobs/x", src)
    assert s.size("blobs/x") == len(payload)
    assert s.sha256("blobs/x") == hashlib.sha256(payload).hexdigest()
    dst = tmp_path / "out" / "copy.bin"
    s.get_file("blobs/x", dst)
    assert dst.read_bytes() == payload


def test_keys_cannot_escape(any_store: str) -> None:
    s = open_store(any_store)
    for bad in ("../x", "/abs", "a/../b", "a//b", ""):
        with pytest.raises(ValueError):
            s.write(bad, b"x")


def test_touch_modified_and_delete_if_older(any_store: str) -> None:
    """The gc-safety capabilities: a touched key is young again, and an old key is deleted
    only when it was not touched since the cutoff."""
    import time

    s = open_store(any_store)
    assert s.touch("blobs/x") is False
    assert s.modified("blobs/x") is None
    s.write("blobs/x", b"data")
    first = s.modified("blobs/x")
    assert first is not None and abs(first - time.time()) < 120
    time.sleep(1.1)  # S3's LastModified has one-second resolution
    assert s.touch("blobs/x") is True
    second = s.modified("blobs/x")
    assert second is not None and second > first
    assert s.read("blobs/x") == b"data"
    assert s.delete_if_older("blobs/x", cutoff=second - 0.5) is False  # touched after the cutoff
    assert s.exists("blobs/x")
    assert s.delete_if_older("blobs/x", cutoff=time.time() + 5) is True
    assert not s.exists("blobs/x")
