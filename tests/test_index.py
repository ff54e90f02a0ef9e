"""The SQLite summary index (modeltrack.index): a cache, so a bad row or an unusable
database file means "recompute from the files", never a wrong listing or an exception."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import modeltrack as mt
from modeltrack import index
from modeltrack.errors import ModelTrackWarning

ROW: dict[str, Any] = {
    "status": "finished",
    "created_at": "2024-01-01T00:00:00+00:00",
    "finished_at": "2024-01-01T00:01:00+00:00",
    "metrics": {"loss": 0.25, "acc": None, "n": 3},
    "label": "1.0.0",
}


def open_fresh(uri: str = "file:///s#id") -> index.Index | None:
    """open_index without this process's memo of earlier opens (a new process, in effect)."""
    for key in [k for k in index._OPEN if k.endswith("|" + uri)]:
        found = index._OPEN.pop(key)
        if found is not None:
            found.close()
    return index.open_index(uri)


def model_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, ModelTrackWarning)]


def raw_rows(db_path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db_path) as db:
        return db.execute(f"SELECT model, version, data, stamp FROM {index.TABLE} ORDER BY version").fetchall()


def raw_insert(db_path: Path, rows: list[tuple[Any, Any]], uri: str = "file:///s#id", model: str = "m") -> None:
    with sqlite3.connect(db_path) as db:
        db.executemany(
            f"INSERT OR REPLACE INTO {index.TABLE} VALUES (?, ?, ?, ?, NULL)", [(uri, model, v, d) for v, d in rows]
        )


def test_round_trip_on_a_real_file(cache: Path) -> None:
    idx = open_fresh()
    assert idx is not None
    idx.put_many("m", [(1, ROW), (2, {**ROW, "status": "failed", "label": None})])
    idx.put_many("other", [(1, ROW)])
    assert (cache / "index.sqlite").is_file()
    again = open_fresh()
    assert again is not None
    got = again.get_model("m")
    assert got == {1: ROW, 2: {**ROW, "status": "failed", "label": None}}
    assert again.get_model("nothing") == {}
    assert open_fresh("file:///elsewhere#id").get_model("m") == {}  # type: ignore[union-attr]


BAD_ROWS: list[tuple[Any, Any]] = [
    (10, "{not json"),
    (11, json.dumps([ROW])),
    (12, json.dumps({k: v for k, v in ROW.items() if k != "status"})),
    (13, json.dumps({k: v for k, v in ROW.items() if k != "label"})),
    (14, json.dumps({**ROW, "status": 1})),
    (15, json.dumps({**ROW, "status": "corrupt"})),
    (16, json.dumps({**ROW, "metrics": [0.1]})),
    (17, json.dumps({**ROW, "metrics": {"loss": "0.1"}})),
    (18, json.dumps({**ROW, "metrics": {"loss": True}})),
    (19, json.dumps({**ROW, "created_at": 5})),
    (20, json.dumps({**ROW, "finished_at": {}})),
    (21, b'{"status": "finished"}'),  # a blob, not text
    ("v22", json.dumps(ROW)),  # version stored as text (numeric text becomes an integer in SQLite)
    (2.5, json.dumps(ROW)),
    (23, "[" * 100_000),
    (24, ""),
    (25, None),
]


def test_bad_rows_are_dropped_and_deleted(cache: Path) -> None:
    idx = open_fresh()
    assert idx is not None
    idx.put_many("m", [(1, ROW), (2, ROW)])
    raw_insert(cache / "index.sqlite", BAD_ROWS)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert idx.get_model("m") == {1: ROW, 2: ROW}
    assert model_warnings(caught) == []  # a bad row is routine: recompute, say nothing
    assert [r[1] for r in raw_rows(cache / "index.sqlite")] == [1, 2]  # gone from the file
    assert idx.get_model("m") == {1: ROW, 2: ROW}


def test_invalid_rows_are_not_written(cache: Path) -> None:
    idx = open_fresh()
    assert idx is not None
    idx.put_many("m", [(1, ROW), (2, {"status": "finished"}), (3, {**ROW, "metrics": None})])
    idx.put_many("m", [("4", ROW)])  # type: ignore[list-item]
    assert [r[1] for r in raw_rows(cache / "index.sqlite")] == [1]


def test_values_json_cannot_hold_do_not_break_writes(cache: Path) -> None:
    idx = open_fresh()
    assert idx is not None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        idx.put_many("m", [(1, {**ROW, "extra": object()})])
    assert len(model_warnings(caught)) <= 1
    assert idx.get_model("m") == {}


def test_stamps_tie_a_row_to_the_file_it_came_from(cache: Path) -> None:
    idx = open_fresh()
    assert idx is not None
    idx.put_many("m", [(1, ROW), (2, ROW), (3, ROW)], stamps={1: 1234, 2: "sha256:ab"})
    assert idx.get_model("m") == {1: ROW, 2: ROW, 3: ROW}  # no stamps asked: every good row
    assert idx.get_model("m", stamps={1: 1234, 2: "sha256:ab", 3: 7}) == {1: ROW, 2: ROW}  # 3 has no stamp
    assert idx.get_model("m", stamps={1: "1234"}) == {1: ROW}  # stamps compare as text
    # final.json of v1 changed size: its row is stale, dropped and deleted
    assert idx.get_model("m", stamps={1: 999, 2: "sha256:ab"}) == {2: ROW}
    assert sorted(r[1] for r in raw_rows(cache / "index.sqlite")) == [2, 3]
    # the caller recomputes and puts it back with the new stamp
    idx.put_many("m", [(1, {**ROW, "label": "2.0.0"})], stamps={1: 999})
    assert idx.get_model("m", stamps={1: 999})[1]["label"] == "2.0.0"


def test_a_legacy_table_is_dropped(cache: Path) -> None:
    cache.mkdir(parents=True)
    with sqlite3.connect(cache / "index.sqlite") as db:
        db.execute("CREATE TABLE summary (store TEXT, model TEXT, version INTEGER, data TEXT)")
        db.execute("INSERT INTO summary VALUES ('file:///s#id', 'm', 1, ?)", (json.dumps(ROW),))
    idx = open_fresh()
    assert idx is not None and idx.get_model("m") == {}
    with sqlite3.connect(cache / "index.sqlite") as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {index.TABLE}


@pytest.mark.parametrize("garbage", [b"\x00\xff{garbage", os.urandom(8192), b"SQLite format 3\x00" + b"\xff" * 5000])
def test_a_garbage_file_costs_one_warning_and_is_rebuilt(cache: Path, garbage: bytes) -> None:
    cache.mkdir(parents=True)
    (cache / "index.sqlite").write_bytes(garbage)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        idx = open_fresh()
        assert (idx.get_model("m") if idx else {}) == {}  # nothing cached: the caller recomputes
        if idx:
            idx.put_many("m", [(1, ROW)])
        for _ in range(2):
            idx = open_fresh()
    msgs = model_warnings(caught)
    assert len(msgs) == 1 and "index.sqlite" in msgs[0] and "damaged" in msgs[0]
    assert idx is not None and idx.get_model("m") == {1: ROW}  # rebuilt, and in use again


def test_damage_while_open_degrades_without_raising(cache: Path) -> None:
    idx = open_fresh()
    assert idx is not None
    idx.put_many("m", [(n, ROW) for n in range(1, 200)])
    idx.close()
    idx = open_fresh()
    assert idx is not None
    data = (cache / "index.sqlite").read_bytes()
    # the file is overwritten under the open connection
    (cache / "index.sqlite").write_bytes(data[:100] + os.urandom(len(data) - 100))
    for name in ("index.sqlite-wal", "index.sqlite-shm"):
        if (cache / name).exists():
            (cache / name).write_bytes(os.urandom(4096))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            got = idx.get_model("m")
            assert all(index.valid_summary(r) for r in got.values())
            idx.put_many("m", [(500, ROW)])
    assert len(model_warnings(caught)) <= 1


def test_a_directory_in_its_place_means_no_index(cache: Path) -> None:
    (cache / "index.sqlite").mkdir(parents=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert open_fresh() is None
        assert open_fresh() is None
        assert open_fresh("file:///other#id") is None
    msgs = model_warnings(caught)
    assert len(msgs) == 1 and "cannot use the summary index" in msgs[0] and "MODELTRACK_INDEX=0" in msgs[0]
    assert (cache / "index.sqlite").is_dir()  # not ours to delete


def test_cache_dir_that_is_a_file_means_no_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "blocker").write_text("x")
    monkeypatch.setenv("MODELTRACK_CACHE", str(tmp_path / "blocker"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert open_fresh() is None
    assert len(model_warnings(caught)) == 1


def test_read_only_cache_means_no_index(readonly_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELTRACK_CACHE", str(readonly_dir))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert open_fresh() is None
        assert open_fresh() is None
    assert len(model_warnings(caught)) == 1


@pytest.fixture
def remountable(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs that can be switched to read-only under an existing database (root only)."""
    path = tmp_path / "fs"
    path.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(path)]).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def test_existing_index_on_a_file_system_turned_read_only(remountable: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELTRACK_CACHE", str(remountable))
    idx = open_fresh()
    assert idx is not None
    idx.put_many("m", [(1, ROW)])
    idx.close()  # a file system with files open for writing cannot turn read-only
    assert subprocess.run(["mount", "-o", "remount,ro", str(remountable)]).returncode == 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # a new process: no index, or a read-only one; never an exception
        again = open_fresh()
        if again is not None:
            assert again.get_model("m") in ({1: ROW}, {})
            again.put_many("m", [(3, ROW)])
    assert len(model_warnings(caught)) <= 1


def test_disabled_and_memory_stores_have_no_index(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert index.open_index("memory://x#id") is None
    monkeypatch.setenv("MODELTRACK_INDEX", "0")
    assert open_fresh() is None
    assert not cache.exists()


# ---------------------------------------------------------------------- through the listing
def _listing(store: str) -> list[tuple[int, str, dict[str, Any]]]:
    return [(r["version"], r["status"], r["metrics"]) for r in mt.versions("m", store=store)]


def test_listing_recomputes_bad_rows_from_the_files(store_uri: str, cache: Path) -> None:
    for loss in (0.5, 0.25):
        with mt.start("m", store=store_uri) as v:
            v.log_metrics({"loss": loss}, epoch=0)
    want = [(1, "finished", {"loss": 0.5}), (2, "finished", {"loss": 0.25})]
    assert _listing(store_uri) == want
    db_path = cache / "index.sqlite"
    rows = raw_rows(db_path)
    assert [r[1] for r in rows] == [1, 2]
    with sqlite3.connect(db_path) as db:
        db.execute(f"UPDATE {index.TABLE} SET data = ? WHERE version = 1", ('{"status": 5}',))
        db.execute(f"UPDATE {index.TABLE} SET data = ? WHERE version = 2", ("garbage",))
    assert _listing(store_uri) == want
    assert [json.loads(r[2]) for r in raw_rows(db_path)] == [json.loads(r[2]) for r in rows]  # refilled


def test_listing_works_with_an_unusable_index(store_uri: str, cache: Path) -> None:
    with mt.start("m", store=store_uri) as v:
        v.log_metrics({"loss": 0.5}, epoch=0)
    for k in list(index._OPEN):  # a new process, in effect
        found = index._OPEN.pop(k)
        if found is not None:
            found.close()
    import shutil

    shutil.rmtree(cache, ignore_errors=True)
    (cache / "index.sqlite").mkdir(parents=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            assert _listing(store_uri) == [(1, "finished", {"loss": 0.5})]
        with mt.start("m", store=store_uri):
            pass
        assert [r[0] for r in _listing(store_uri)] == [1, 2]
    assert len(model_warnings(caught)) == 1
