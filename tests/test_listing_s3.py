"""Listing a model on S3: records fetched in parallel, ended versions kept in summary packs
in the store and in the local index, so a cold listing reads a few objects, not one per
version. The packs are caches: absent, damaged or unwritable, they cost speed, never a
wrong listing."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("boto3")
pytest.importorskip("moto")

import modeltrack as mt
from modeltrack.errors import StoreNotWritableError
from modeltrack.repo import Repo, pack_key
from modeltrack.stores import open_store
from modeltrack.stores.s3 import S3Store


def make_versions(uri: str, model: str, count: int) -> None:
    """``count`` ended versions of ``model``: one made by modeltrack, the others written
    directly as its claim and final record under the next numbers (each with its own loss)."""
    v = mt.start(model, store=uri)
    v.log_metrics({"loss": 1.0}, step=0)
    v.finish()
    store = open_store(uri)
    claim = json.loads(store.read(f"models/{model}/versions/1/claim.json"))
    final = json.loads(store.read(f"models/{model}/versions/1/final.json"))
    series = store.read(f"models/{model}/versions/1/series.json")
    for n in range(2, count + 1):
        store.write(f"models/{model}/versions/{n}/claim.json", json.dumps({**claim, "version": n}).encode())
        store.write(f"models/{model}/versions/{n}/series.json", series)
        metrics = {"loss": {**final["metrics"]["loss"], "last": 1.0 / n}}
        store.write(f"models/{model}/versions/{n}/final.json", json.dumps({**final, "metrics": metrics}).encode())


def fresh_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An empty local cache, as on another machine."""
    monkeypatch.setenv("MODELTRACK_CACHE", str(tmp_path / f"cache-{uuid.uuid4().hex[:8]}"))


def count_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    real = S3Store.read

    def read(self: S3Store, key: str) -> bytes:
        seen.append(key)
        return real(self, key)

    monkeypatch.setattr(S3Store, "read", read)
    return seen


def listing(uri: str, model: str = "m") -> list[tuple[int, str, Any]]:
    return [(r["version"], r["status"], r["metrics"]) for r in mt.versions(model, store=uri)]


def test_cold_listing_uses_the_pack_the_first_listing_wrote(
    s3_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = s3_server.new_store_uri()
    make_versions(uri, "m", 30)
    fresh_cache(monkeypatch, tmp_path)
    reads = count_reads(monkeypatch)
    first = listing(uri)
    assert [n for n, _, _ in first] == list(range(1, 31))
    assert first[29] == (30, "finished", {"loss": 1.0 / 30})
    assert sum(k.endswith("final.json") for k in reads) == 30  # read from the files (in parallel)
    assert open_store(uri).exists(pack_key("m", 0))

    fresh_cache(monkeypatch, tmp_path)  # another machine: nothing cached locally
    reads.clear()
    assert listing(uri) == first
    assert not any(k.endswith("final.json") for k in reads), reads  # one pack instead of 30 records
    reads.clear()
    assert listing(uri) == first  # now from the local index: no pack read either
    assert pack_key("m", 0) not in reads
    check = mt.verify(store=uri)
    assert check["ok"], check["problems"]  # the pack is no stray file


def test_a_damaged_or_foreign_pack_is_ignored(s3_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    uri = s3_server.new_store_uri()
    make_versions(uri, "m", 25)
    want = listing(uri)
    store = open_store(uri)
    for bad in (
        b"not json",
        json.dumps({"model": "other", "versions": {"1": {"status": "finished"}}}).encode(),
        json.dumps({"model": "m", "versions": {"3": {"status": "weird"}, "1001": want[0]}}).encode(),
    ):
        store.write(pack_key("m", 0), bad)
        fresh_cache(monkeypatch, tmp_path)
        assert listing(uri) == want


def test_running_versions_are_never_packed_and_new_ones_show(
    s3_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = s3_server.new_store_uri()
    make_versions(uri, "m", 21)
    running = mt.start("m", store=uri)
    running.log_metrics({"loss": 0.5}, step=0)
    running.flush()
    fresh_cache(monkeypatch, tmp_path)
    rows = listing(uri)
    assert rows[-1][:2] == (22, "running")
    pack = json.loads(open_store(uri).read(pack_key("m", 0)))
    assert sorted(int(n) for n in pack["versions"]) == list(range(1, 22))
    running.finish()
    fresh_cache(monkeypatch, tmp_path)
    assert listing(uri)[-1][:2] == (22, "finished")


def test_a_store_this_process_cannot_write_still_lists(
    s3_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = s3_server.new_store_uri()
    make_versions(uri, "m", 25)

    def refuse(self: S3Store, key: str, data: bytes) -> None:
        raise StoreNotWritableError("read-only credentials", uri=self.uri)

    monkeypatch.setattr(S3Store, "write", refuse)
    fresh_cache(monkeypatch, tmp_path)
    assert [n for n, _, _ in listing(uri)] == list(range(1, 26))
    monkeypatch.undo()
    assert not open_store(uri).exists(pack_key("m", 0))


def test_packs_can_be_switched_off(s3_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    uri = s3_server.new_store_uri()
    make_versions(uri, "m", 25)
    monkeypatch.setenv("MODELTRACK_SUMMARY_PACKS", "0")
    fresh_cache(monkeypatch, tmp_path)
    assert len(listing(uri)) == 25
    assert not open_store(uri).exists(pack_key("m", 0))


def test_parallel_reads_keep_the_order_and_the_half_claimed(
    s3_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = s3_server.new_store_uri()
    make_versions(uri, "m", 12)
    open_store(uri).write("models/m/versions/13/environment.json", b"{}")  # a number never claimed
    make_versions_more = Repo(uri)
    assert make_versions_more.version_numbers("m") == list(range(1, 14))
    monkeypatch.setenv("MODELTRACK_LIST_CONCURRENCY", "5")
    fresh_cache(monkeypatch, tmp_path)
    rows = listing(uri)
    assert [n for n, _, _ in rows] == list(range(1, 13))
    assert [m["loss"] for _, _, m in rows] == [1.0] + [1.0 / n for n in range(2, 13)]


def test_verify_reports_a_pack_row_that_disagrees_with_the_version(
    s3_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Listings trust a well-formed pack row, so a row changed by hand would show a wrong
    value: verify compares every row with the version's own final.json and names the pack."""
    uri = s3_server.new_store_uri()
    make_versions(uri, "m", 25)
    want = listing(uri)
    store = open_store(uri)
    assert mt.verify(store=uri)["ok"]
    pack = json.loads(store.read(pack_key("m", 0)))
    pack["versions"]["7"]["metrics"]["loss"] = 0.001  # well-formed, wrong
    store.write(pack_key("m", 0), json.dumps(pack).encode())
    res = mt.verify(store=uri)
    assert not res["ok"]
    (problem,) = res["problems"]
    assert problem["key"] == pack_key("m", 0) and "m@v7" in problem["problem"] and "delete it" in problem["problem"]
    store.write(pack_key("m", 0), b"not json")
    assert [p["key"] for p in mt.verify(store=uri)["problems"]] == [pack_key("m", 0)]
    store.delete(pack_key("m", 0))  # the fix the message gives
    assert mt.verify(store=uri)["ok"]
    fresh_cache(monkeypatch, tmp_path)
    assert listing(uri) == want
