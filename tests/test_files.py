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


def _big(path: Path, mb: int = 40) -> bytes:
    import os
    import time

    data = os.urandom(1 << 20) * mb
    path.write_bytes(data)
    old = time.time() - 60
    os.utime(path, (old, old))
    time.sleep(0.05)  # its change time settled too
    return data


def test_copy_hashing_of_a_large_file_hashes_while_copying(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib

    from modeltrack.stores import base

    src = tmp_path / "big.bin"
    data = _big(src)
    hashed: list[str] = []
    real = base.file_sha256

    def spy(path: object) -> tuple[str, int]:
        hashed.append(str(path))
        return real(path)  # type: ignore[arg-type]

    monkeypatch.setattr(base, "file_sha256", spy)
    sha, size = base.copy_hashing(src, tmp_path / "copy.bin")
    assert (sha, size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert (tmp_path / "copy.bin").read_bytes() == data
    assert hashed == [str(src)]  # one hash pass, of the source, alongside the copy


def test_copy_hashing_hashes_the_copy_when_the_source_changes_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib

    from modeltrack import files
    from modeltrack.stores import base

    src = tmp_path / "big.bin"
    _big(src)
    real = files.copy_file

    def copy_then_rewrite(a: Path, b: Path) -> int:
        n = real(a, b)
        with open(a, "r+b") as f:  # rewritten in place, same size (Lightning's last.ckpt)
            f.write(b"X" * 1024)
        return n

    monkeypatch.setattr(files, "copy_file", copy_then_rewrite)
    dst = tmp_path / "copy.bin"
    sha, size = base.copy_hashing(src, dst)
    assert (sha, size) == (hashlib.sha256(dst.read_bytes()).hexdigest(), dst.stat().st_size)


def test_copy_hashing_of_small_or_just_written_files_hashes_the_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib

    from modeltrack.stores import base

    hashed: list[str] = []
    real = base.file_sha256
    monkeypatch.setattr(base, "file_sha256", lambda p: hashed.append(str(p)) or real(p))
    small = tmp_path / "small.bin"
    small.write_bytes(b"abc")
    assert base.copy_hashing(small, tmp_path / "c1")[0] == hashlib.sha256(b"abc").hexdigest()
    fresh = tmp_path / "fresh.bin"
    fresh.write_bytes(b"y" * (base.PARALLEL_HASH_BYTES + 1))
    monkeypatch.setattr(base, "_RACY_NS", 3600 * 10**9)  # "just written": it may change in the same tick
    base.copy_hashing(fresh, tmp_path / "c2")
    assert hashed == [str(tmp_path / "c1"), str(tmp_path / "c2")]
