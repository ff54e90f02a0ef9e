"""The version-creation path made cheap (issue 13): what it skips must never change what is
recorded. Index rows written in batches, one index connection per process, the code
snapshot's hash re-used only while the file is unchanged, start()'s records in one file,
the changelog's shortcut to the version this process just finished."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import modeltrack as mt
from modeltrack import index
from modeltrack.files import temp_name
from modeltrack.repo import Repo


def _rows(cache: Path) -> list[tuple[str, int]]:
    db = sqlite3.connect(cache / "index.sqlite")
    try:
        return sorted(db.execute(f"SELECT model, version FROM {index.TABLE}").fetchall())
    finally:
        db.close()


def test_index_rows_are_batched_and_a_listing_sees_them(tmp_path: Path, cache: Path) -> None:
    store = str(tmp_path / "s")
    for i in range(3):
        with mt.start("m", store=store) as v:
            v.log_metrics({"loss": 1.0 / (i + 1)}, epoch=0)
    assert _rows(cache) == []  # held back: fewer writes per version
    rows = mt.versions("m", store=store)
    assert [(r["version"], r["status"], r["metrics"]["loss"]) for r in rows] == [
        (1, "finished", 1.0),
        (2, "finished", 0.5),
        (3, "finished", pytest.approx(1 / 3)),
    ]
    assert _rows(cache) == [("m", 1), ("m", 2), ("m", 3)]  # the listing wrote them first


def test_index_rows_are_written_once_a_batch_is_full(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(index, "BATCH_ROWS", 2)
    store = str(tmp_path / "s")
    for _ in range(5):
        with mt.start("m", store=store):
            pass
    assert _rows(cache) == [("m", n) for n in range(1, 5)]  # two batches of two; the fifth waits


def test_index_rows_held_back_are_written_at_exit(tmp_path: Path, cache: Path) -> None:
    store = tmp_path / "s"
    code = f"import modeltrack as mt\nfor i in range(2):\n    mt.start('m', store={str(store)!r}).finish()\n"
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "MODELTRACK_CACHE": str(cache)})
    assert _rows(cache) == [("m", 1), ("m", 2)]


def test_rows_of_versions_finished_at_exit_are_written_too(tmp_path: Path, cache: Path) -> None:
    store = tmp_path / "s"
    code = (
        f"import modeltrack as mt\nmt.start('m', store={str(store)!r}).finish()\nmt.start('m', store={str(store)!r})\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "MODELTRACK_CACHE": str(cache)})
    assert _rows(cache) == [("m", 1), ("m", 2)]  # v2 was left running: finished at exit, then written


def test_a_killed_process_loses_only_index_rows_not_versions(tmp_path: Path, cache: Path) -> None:
    store = tmp_path / "s"
    code = (
        f"import os, signal, modeltrack as mt\nfor i in range(2):\n    mt.start('m', store={str(store)!r}).finish()\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ, "MODELTRACK_CACHE": str(cache)})
    assert proc.returncode == -9
    assert [(r["version"], r["status"]) for r in mt.versions("m", store=str(store))] == [
        (1, "finished"),
        (2, "finished"),
    ]
    assert _rows(cache) == [("m", 1), ("m", 2)]  # the listing filled the index from the files


def _index_fds(cache: Path) -> int:
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith(str(cache / "index.sqlite")):
                n += 1
        except OSError:
            pass
    return n


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to count open files")
def test_one_index_connection_serves_every_store(tmp_path: Path, cache: Path) -> None:
    for i in range(40):
        store = str(tmp_path / f"s{i}")
        with mt.start("m", store=store):
            pass
        assert len(mt.versions("m", store=store)) == 1
    assert 1 <= _index_fds(cache) <= 3  # the database and its two journals, not 40 connections


SCRIPT = """
import sys
import modeltrack as mt
from modeltrack.stores.local import LocalStore

staged = []
original = LocalStore.stage_file


def counting(self, src):
    staged.append(str(src))
    return original(self, src)


LocalStore.stage_file = counting
for i in range(int(sys.argv[2])):
    with mt.start("m", store=sys.argv[1]) as v:
        pass
print(len([s for s in staged if s.endswith("train.py")]))
"""


def _run(script: Path, store: Path, n: int) -> int:
    out = subprocess.run(
        [sys.executable, str(script), str(store), str(n)], cwd=script.parent, capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip().splitlines()[-1])


def _snapshot_sha(store: Path, number: int) -> str:
    final = json.loads((store / "models" / "m" / "versions" / str(number) / "final.json").read_text())
    (art,) = [a for a in final["artifacts"] if a["path"] == "code/train.py"]
    return str(art["sha256"])


def test_code_snapshot_hash_is_reused_only_while_the_file_is_unchanged(tmp_path: Path, cache: Path) -> None:
    proj = tmp_path / "proj"
    proj.mkdir()
    script = proj / "train.py"
    script.write_text(SCRIPT)
    old = time.time() - 60
    os.utime(script, (old, old))
    time.sleep(0.05)  # settled: its inode change time older than the clock's reach
    store = tmp_path / "store"
    assert _run(script, store, 4) == 1  # hashed once, re-used by the three versions after it
    shas = {_snapshot_sha(store, n) for n in range(1, 5)}
    assert len(shas) == 1

    # Same size, mtime put back: only the inode change time tells, and it does.
    text = SCRIPT.replace('"m"', "'m'")
    assert len(text) == len(SCRIPT)
    script.write_text(text)
    os.utime(script, (old, old))
    time.sleep(0.05)
    assert _run(script, store, 1) == 1
    assert _snapshot_sha(store, 5) not in shas
    blob = store / "blobs" / "sha256" / _snapshot_sha(store, 5)[:2] / _snapshot_sha(store, 5)
    assert blob.read_text() == text


def test_a_script_changed_within_the_clocks_reach_is_hashed_each_time(tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    proj.mkdir()
    script = proj / "train.py"
    # An edit in the same clock tick as the last one keeps the stat: a window of an hour
    # makes every file "just written", so nothing is re-used.
    script.write_text(
        SCRIPT.replace(
            "import sys\n", "import sys\nimport modeltrack.tracking\nmodeltrack.tracking._RACY_NS = 3600 * 10**9\n", 1
        )
    )
    assert _run(script, tmp_path / "store", 3) == 3


def test_start_writes_what_it_records_as_one_record(tmp_path: Path) -> None:
    store = tmp_path / "s"
    with mt.start("m", store=str(store), params={"lr": 0.1}, framework="sklearn", parent=None) as v:
        v.log_params(epochs=3)  # after start(): a record of its own
    records = sorted((store / "models" / "m" / "versions" / "1" / "records").iterdir())
    first = json.loads(records[0].read_text())
    assert {e["type"] for e in first} >= {"params", "framework"}
    assert any(
        e["type"] == "params" and e["params"] == {"epochs": 3} for r in records[1:] for e in json.loads(r.read_text())
    )
    rec = mt.show("m@v1", store=str(store))
    assert rec["params"] == {"lr": 0.1, "epochs": 3} and rec["framework"] == "sklearn"


def test_a_version_killed_inside_training_keeps_start_records(tmp_path: Path) -> None:
    store = tmp_path / "s"
    code = (
        f"import os, signal, modeltrack as mt\nv = mt.start('m', store={str(store)!r}, params={{'lr': 0.5}})\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == -9
    rec = mt.show("m@v1", store=str(store))
    assert rec["status"] == "crashed" and rec["params"] == {"lr": 0.5}


def test_changelog_shortcut_still_diffs_against_the_right_version(tmp_path: Path) -> None:
    store = str(tmp_path / "s")
    with mt.start("m", store=store, params={"lr": 0.1}):
        pass
    # v2 by another process, finished: the next changelog of this process is against it.
    code = f"import modeltrack as mt\nmt.start('m', store={store!r}, params={{'lr': 0.2}}).finish()\n"
    subprocess.run([sys.executable, "-c", code], check=True)
    with mt.start("m", store=store, params={"lr": 0.3}):
        pass
    assert mt.show("m@v3", store=store)["changes"]["against"] == 2
    # v4 failed: v5 is compared with v3, the newest finished one.
    with pytest.raises(RuntimeError), mt.start("m", store=store, params={"lr": 0.4}):
        raise RuntimeError("boom")
    with mt.start("m", store=store, params={"lr": 0.5}):
        pass
    changes = mt.show("m@v5", store=store)["changes"]
    assert changes["against"] == 3 and changes["params"]["changed"] == {"lr": {"from": 0.3, "to": 0.5}}


def test_changelog_shortcut_skips_a_previous_version_whose_files_are_gone(tmp_path: Path) -> None:
    store = tmp_path / "s"
    with mt.start("m", store=str(store), params={"lr": 0.1}):
        pass
    with mt.start("m", store=str(store), params={"lr": 0.2}):
        pass
    (store / "models" / "m" / "versions" / "2" / "final.json").unlink()  # damaged by hand
    with mt.start("m", store=str(store), params={"lr": 0.3}):
        pass
    assert mt.show("m@v3", store=str(store))["changes"]["against"] == 1


def test_format_is_read_again_when_the_file_changes(tmp_path: Path) -> None:
    store = tmp_path / "s"
    with mt.start("m", store=str(store)):
        pass
    fmt = json.loads((store / "FORMAT").read_text())
    (store / "FORMAT").write_text(json.dumps({**fmt, "format": 999}))
    with pytest.raises(mt.errors.StoreFormatError, match="format 999"):
        mt.start("m", store=str(store))
    assert Repo(str(store)).version_numbers("m") == [1]


def test_temporary_names_differ_across_threads_processes_and_calls(tmp_path: Path) -> None:
    path = str(tmp_path / "x.json")
    names = {temp_name(path) for _ in range(1000)}
    assert len(names) == 1000 and all(Path(n).parent == tmp_path for n in names)
    code = f"from modeltrack.files import temp_name; print(temp_name({path!r}))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert other not in names
    if hasattr(os, "fork"):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: a fresh random token, whatever its pid
            os.write(w, temp_name(path).encode())
            os._exit(0)
        os.close(w)
        os.waitpid(pid, 0)
        child = os.read(r, 4096).decode()
        os.close(r)
        token = textwrap.shorten(child, 200).split(".")[-4]
        assert token not in {n.split(".")[-4] for n in names}
