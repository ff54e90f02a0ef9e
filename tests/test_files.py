"""The one atomic-write helper every local write goes through."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from modeltrack.files import atomic_write, is_temp_name, replacing, temp_path
from modeltrack.stores import LocalStore


def test_atomic_write_replaces_whole(tmp_path: Path) -> None:
    target = tmp_path / "f.json"
    atomic_write(target, b"one")
    atomic_write(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]  # no temporary file left


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "f.json"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with replacing(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed mid-write")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_temporary_names_are_hidden_and_never_shared(tmp_path: Path) -> None:
    names: set[str] = set()
    lock = threading.Lock()

    def pick() -> None:
        for _ in range(200):
            name = temp_path(tmp_path / "x").name
            with lock:
                names.add(name)

    threads = [threading.Thread(target=pick) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(names) == 800
    assert all(is_temp_name(n) for n in names)
    assert is_temp_name(temp_path(tmp_path / "blob", "gc").name)


def test_the_local_store_never_lists_temporary_files(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "s")
    store.write("a/b.json", b"{}")
    temp_path(tmp_path / "s" / "a" / "c.json").write_bytes(b"half")
    assert store.list("a") == ["b.json"]
    assert list(store.walk("a")) == ["a/b.json"]
