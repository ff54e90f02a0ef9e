"""log_artifact returns after a stat and an O(1) hold; the version's writer hashes, copies and
stores the file in order (issue 13). A file rewritten in place is never stored torn, and a
process killed after ``flush()`` loses no artifact logged before it."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import modeltrack as mt
from modeltrack.errors import ModelTrackWarning


@pytest.fixture(autouse=True)
def lenient_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    # Strict mode stores on the caller's thread (so that a failure raises there): these tests
    # are about the default, asynchronous path.
    monkeypatch.delenv("MODELTRACK_STRICT", raising=False)


def _blob(store: str, sha: str) -> bytes:
    return mt.Repo(store).store.read(f"blobs/sha256/{sha[:2]}/{sha}")


def test_the_caller_does_not_read_the_file(any_store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from modeltrack import tracking

    f = tmp_path / "model.bin"
    data = os.urandom(300_000)
    f.write_bytes(data)
    readers: list[str] = []
    real = tracking.Version._store_file

    def spy(self: tracking.Version, item: object) -> str | None:
        readers.append(threading.current_thread().name)
        return real(self, item)  # type: ignore[arg-type]

    monkeypatch.setattr(tracking.Version, "_store_file", spy)
    with mt.start("m", store=any_store) as v:
        t = time.perf_counter()
        (rec,) = v.log_artifact(f, kind="model")
        took = time.perf_counter() - t
        assert rec["path"] == "model.bin" and rec["size"] == len(data)
        deadline = time.monotonic() + 10
        while "sha256" not in rec and time.monotonic() < deadline:
            time.sleep(0.01)  # the writer stores it without being asked
        v.flush()  # the flush point: stored when it returns
        assert rec["sha256"] == hashlib.sha256(data).hexdigest()
    assert readers and all(name != threading.current_thread().name for name in readers), readers
    assert took < 0.5
    (art,) = [a for a in mt.show("m", store=any_store)["artifacts"] if a["kind"] != "code"]
    assert _blob(any_store, art["sha256"]) == data


def test_deleted_and_renamed_over_right_after_logging(store_uri: str, tmp_path: Path) -> None:
    gone, replaced, d = tmp_path / "gone.bin", tmp_path / "replaced.bin", tmp_path / "dir"
    gone.write_bytes(b"a" * 100_000)
    replaced.write_bytes(b"b" * 100_000)
    (d / "sub").mkdir(parents=True)
    (d / "x.txt").write_text("x" * 5000)
    (d / "sub" / "y.txt").write_text("y" * 5000)
    with mt.start("m", store=store_uri) as v:
        v.log_artifact(gone)
        v.log_artifact(replaced)
        v.log_artifact(d, kind="dataset")
        gone.unlink()  # Lightning deletes a checkpoint that left the top-k
        new = tmp_path / "new.bin"
        new.write_bytes(b"c" * 100_000)
        os.replace(new, replaced)  # Keras-style save to a temporary name then rename
        shutil.rmtree(d)
    arts = {a["path"]: a for a in mt.show("m", store=store_uri)["artifacts"] if a["kind"] != "code"}
    assert set(arts) == {"gone.bin", "replaced.bin", "dir/x.txt", "dir/sub/y.txt"}
    assert _blob(store_uri, arts["gone.bin"]["sha256"]) == b"a" * 100_000
    assert _blob(store_uri, arts["replaced.bin"]["sha256"]) == b"b" * 100_000
    assert _blob(store_uri, arts["dir/sub/y.txt"]["sha256"]) == b"y" * 5000
    # Nothing of ours is left behind (held links, staged copies).
    assert not [p for p in Path(store_uri, "blobs").rglob(".*") if p.is_file()]
    assert mt.verify(store=store_uri)["ok"]


def _version_bytes(i: int, size: int) -> bytes:
    return (f"{i:08d}".encode() * (size // 8 + 1))[:size]


@pytest.mark.parametrize("size", [4096, 2 * 1024 * 1024])
def test_rewritten_in_place_is_never_stored_torn(store_uri: str, tmp_path: Path, size: int) -> None:
    """``last.ckpt`` rewritten in place (truncate, then chunked writes) right after each log."""
    path = tmp_path / "last.ckpt"
    rounds = 25
    with warnings_recorded() as caught:
        with mt.start("m", store=store_uri) as v:
            path.write_bytes(_version_bytes(0, size))
            for i in range(rounds):
                v.log_artifact(path, kind="checkpoint", name=f"epoch-{i}.ckpt", epoch=i)
                with open(path, "wb") as f:  # in place: the same inode, so a hard link does not help
                    data = _version_bytes(i + 1, size)
                    for k in range(0, size, 64 * 1024):
                        f.write(data[k : k + 64 * 1024])
                        f.flush()
                        if i % 3 == 0:
                            time.sleep(0.001)
    rec = mt.show("m", store=store_uri)
    stored = {a["path"]: a for a in rec["artifacts"] if a["kind"] != "code"}
    lost = {x["path"]: x["reason"] for x in rec.get("info", {}).get("not_recorded", [])}
    assert set(stored) | set(lost) == {f"epoch-{i}.ckpt" for i in range(rounds)}
    assert not set(stored) & set(lost)
    for name, art in stored.items():
        blob = _blob(store_uri, art["sha256"])
        assert len(blob) == size, name
        first = blob[:8]
        assert blob == (first * (size // 8 + 1))[:size], f"{name} is torn"  # one complete version
        assert int(first) in range(rounds + 1)
    for reason in lost.values():
        assert "rewritten" in reason
    # The last round is never superseded: if it was lost, it was said (a warning).
    if f"epoch-{rounds - 1}.ckpt" in lost:
        assert any("rewritten" in str(w.message) for w in caught)
    print(f"size {size}: {len(stored)} stored, {len(lost)} superseded")


class warnings_recorded:
    def __enter__(self) -> list:  # type: ignore[type-arg]
        import warnings

        self._cm = warnings.catch_warnings(record=True)
        caught = self._cm.__enter__()
        warnings.simplefilter("always", ModelTrackWarning)
        return caught

    def __exit__(self, *exc: object) -> None:
        self._cm.__exit__(*exc)


def test_finish_waits_for_pending_artifacts(store_uri: str, tmp_path: Path) -> None:
    files = []
    for i in range(4):
        f = tmp_path / f"c{i}.bin"
        f.write_bytes(os.urandom(4 * 1024 * 1024))
        files.append(f)
    v = mt.start("m", store=store_uri)
    recs = [v.log_artifact(f, kind="checkpoint")[0] for f in files]
    v.release_artifact("c0.bin")  # recorded after the artifact it releases, in that order
    v.finish()
    assert all(r.get("sha256") for r in recs)
    arts = {a["path"] for a in mt.show("m", store=store_uri)["artifacts"] if a["kind"] != "code"}
    assert arts == {"c1.bin", "c2.bin", "c3.bin"}
    records = mt.Repo(store_uri).records("m", 1)
    kinds = [
        (e["type"], e["path"]) for e in records if e["type"] in ("artifact", "release") and e.get("kind") != "code"
    ]
    assert kinds == [("artifact", "c0.bin"), ("artifact", "c1.bin"), ("artifact", "c2.bin"),
                     ("artifact", "c3.bin"), ("release", "c0.bin")]  # fmt: skip


def test_log_table_file_is_ours(store_uri: str) -> None:
    with mt.start("m", store=store_uri) as v:
        v.log_table("t.csv", ["a", "b"], [[1, 2], [3, 4]])
    (art,) = [a for a in mt.show("m", store=store_uri)["artifacts"] if a["kind"] != "code"]
    assert _blob(store_uri, art["sha256"]) == b"a,b\n1,2\n3,4\n"


CHILD = textwrap.dedent(
    """
    import os, sys, time
    import modeltrack as mt
    store, work, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    v = mt.start("killed", store=store)
    for i in range(int(os.environ.get("N", "3"))):
        p = os.path.join(work, f"f{i}.bin")
        with open(p, "wb") as f:
            f.write(os.urandom(1024 * 1024))
        v.log_artifact(p, kind="checkpoint", epoch=i)
        v.log_metrics({"loss": 1.0 / (i + 1)}, step=i, epoch=i)
        if mode == "flush":
            continue
        print("LOGGED", i, flush=True)
    if mode == "flush":
        v.flush()
        print("FLUSHED", flush=True)
        p = os.path.join(work, "after.bin")
        with open(p, "wb") as f:
            f.write(os.urandom(64 * 1024 * 1024))
        v.log_artifact(p, kind="checkpoint")  # may or may not be stored: never half
        print("AFTER", flush=True)
    time.sleep(60)
    """
)


def _spawn(store: str, work: Path, mode: str, n: int) -> subprocess.Popen[str]:
    env = {**os.environ, "N": str(n)}
    env.pop("MODELTRACK_STRICT", None)
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, store, str(work), mode], stdout=subprocess.PIPE, text=True, env=env
    )


def _check_consistent(store: str) -> list[dict]:  # type: ignore[type-arg]
    """Readable, and every recorded artifact's blob is there and whole."""
    repo = mt.Repo(store)
    arts = [e for e in repo.records("killed", 1) if e["type"] == "artifact"]
    for a in arts:
        blob = _blob(store, a["sha256"])
        assert hashlib.sha256(blob).hexdigest() == a["sha256"] and len(blob) == a["size"]
    mt.show("killed@v1", store=store)
    return arts


def test_sigkill_after_flush_loses_nothing_logged_before(store_uri: str, tmp_path: Path) -> None:
    proc = _spawn(store_uri, tmp_path, "flush", 3)
    assert proc.stdout is not None
    try:
        line = proc.stdout.readline()
        assert line.strip() == "FLUSHED", line
        proc.send_signal(signal.SIGKILL)  # right after the flush point, mid-copy of after.bin
        proc.wait(30)
    finally:
        proc.kill()
    arts = _check_consistent(store_uri)
    paths = [a["path"] for a in arts]
    assert {"f0.bin", "f1.bin", "f2.bin"} <= set(paths)
    for a in arts:
        if a["path"].startswith("f"):
            assert _blob(store_uri, a["sha256"]) == (tmp_path / a["path"]).read_bytes()
    series = mt.Repo(store_uri).series("killed", 1)
    assert series["loss"]["step"] == [0, 1, 2]


@pytest.mark.parametrize("delay", [0.05, 0.2, 0.5])
def test_sigkill_at_any_instant_leaves_whole_artifacts(store_uri: str, tmp_path: Path, delay: float) -> None:
    proc = _spawn(store_uri, tmp_path, "loop", 40)
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline().startswith("LOGGED")
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        proc.kill()
    _check_consistent(store_uri)
    assert mt.verify(store=store_uri)["ok"] in (True, False)  # verify runs on a killed store
    json.dumps(mt.show("killed@v1", store=store_uri))
