"""``load()`` decides trust from content and loader, never from the file's name.

A pickle whose ``__reduce__`` touches a marker file stands in for an attacker's payload: if
the marker appears, untrusted code ran.
"""

from __future__ import annotations

import gzip
import os
import pickle
import zipfile
from pathlib import Path

import pytest

import modeltrack as mt
from modeltrack.errors import CorruptRecordError, ModelTrackError, UntrustedArtifactError
from modeltrack.formats import sniff


@pytest.fixture(autouse=True)
def _keras_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERAS_BACKEND", "torch")


class Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[Path]]:
        return (Path.touch, (self.marker,))


def _payload_bytes(marker: Path, form: str) -> bytes:
    raw = pickle.dumps(Payload(marker), protocol=4)
    if form == "pickle":
        return raw
    if form == "pickle0":
        return pickle.dumps(Payload(marker), protocol=0)
    if form == "gzip":
        return gzip.compress(raw)
    if form == "torchzip":
        import io

        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("archive/data.pkl", raw)
            z.writestr("archive/version", "3\n")
        return buf.getvalue()
    raise AssertionError(form)


NAMES = ["model.json", "model.JOBLIB", "model.joblib.gz", "model", "model.keras", "model.safetensors", "model.CKPT"]
FRAMEWORKS = [None, "sklearn", "keras", "lightning", "pytorch_lightning"]


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("form", ["pickle", "pickle0", "gzip", "torchzip"])
def test_pickles_under_any_name_never_run_untrusted(
    tmp_path: Path, store_uri: str, framework: str | None, name: str, form: str
) -> None:
    marker = tmp_path / "pwned"
    src = tmp_path / "src"
    src.write_bytes(_payload_bytes(marker, form))
    with mt.start("m", store=store_uri, framework=framework) as v:
        v.log_artifact(src, kind="model", name=name)
    with pytest.raises(ModelTrackError) as info:
        mt.load("m", store=store_uri)
    assert not marker.exists(), "untrusted pickle code ran"
    if framework == "keras":
        assert "Keras" in str(info.value) or isinstance(info.value, UntrustedArtifactError)
    elif framework is None and form == "torchzip":
        assert "cannot load" in str(info.value)
    else:
        assert isinstance(info.value, UntrustedArtifactError), info.value
        assert "trust=True" in str(info.value)
    # MODELTRACK_TRUST=0 (explicit) is no opt-in either
    with pytest.raises(ModelTrackError):
        mt.load("m", store=store_uri, trust=False)
    assert not marker.exists()


def test_pickle_named_keras_is_refused_even_with_trust(tmp_path: Path, store_uri: str) -> None:
    marker = tmp_path / "pwned"
    src = tmp_path / "model.keras"
    src.write_bytes(_payload_bytes(marker, "pickle"))
    with mt.start("m", store=store_uri, framework="keras") as v:
        v.log_artifact(src, kind="model")
    with pytest.raises(ModelTrackError, match="not a Keras archive"):
        mt.load("m", store=store_uri, trust=True)
    assert not marker.exists()


def test_trusted_hand_logged_joblib_loads_by_content(tmp_path: Path, store_uri: str) -> None:
    joblib = pytest.importorskip("joblib")
    src = tmp_path / "weights.bin"
    joblib.dump({"coef": [1, 2, 3]}, src)
    with mt.start("m", store=store_uri) as v:  # framework None: the loader follows the content
        v.log_artifact(src, kind="model")
    with pytest.raises(UntrustedArtifactError):
        mt.load("m", store=store_uri)
    assert mt.load("m", store=store_uri, trust=True) == {"coef": [1, 2, 3]}


def test_damaged_blob_is_never_handed_out(tmp_path: Path, store_uri: str) -> None:
    src = tmp_path / "model.json"
    src.write_text('{"a": 1}')
    with mt.start("m", store=store_uri) as v:
        (art,) = v.log_artifact(src, kind="model")
    blob = Path(store_uri) / "blobs" / "sha256" / art["sha256"][:2] / art["sha256"]
    os.chmod(blob, 0o644)
    blob.write_text('{"a": 2}')
    with pytest.raises(CorruptRecordError, match="damaged"):
        mt.load("m", "path", store=store_uri)
    assert not list((tmp_path / "cache").rglob("model.json"))


def _secret_and_stored_blob(tmp_path: Path, store_uri: str) -> tuple[Path, Path]:
    """A credentials file outside the store, and the blob file of a logged model."""
    secret = tmp_path / "credentials"
    secret.write_text("aws_secret_access_key = hunter2")
    src = tmp_path / "model.json"
    src.write_text('{"a": 1}')
    with mt.start("m", store=store_uri) as v:
        (art,) = v.log_artifact(src, kind="model")
    return secret, Path(store_uri) / "blobs" / "sha256" / art["sha256"][:2] / art["sha256"]


def test_blob_replaced_by_symlink_is_not_followed(tmp_path: Path, store_uri: str) -> None:
    secret, blob = _secret_and_stored_blob(tmp_path, store_uri)
    blob.unlink()
    blob.symlink_to(secret)
    with pytest.raises(CorruptRecordError):
        mt.load("m", "path", store=store_uri)
    for f in (tmp_path / "cache").rglob("*"):
        if f.is_file():
            assert b"hunter2" not in f.read_bytes()


def test_sniff_formats(tmp_path: Path) -> None:
    marker = tmp_path / "x"
    cases = {
        "pickle": _payload_bytes(marker, "pickle"),
        "compressed": _payload_bytes(marker, "gzip"),
        "torch": _payload_bytes(marker, "torchzip"),
        "json": b'{"a": [1, 2]}',
        "unknown": _payload_bytes(marker, "pickle0"),
    }
    for want, data in cases.items():
        f = tmp_path / f"f-{want}"
        f.write_bytes(data)
        got = sniff(f)
        assert got.name == want, (want, got)
        assert got.executes_code == (want != "json")
    assert not marker.exists()


@pytest.mark.slow
def test_real_keras_archive_loads_in_safe_mode_without_trust(tmp_path: Path, store_uri: str) -> None:
    keras = pytest.importorskip("keras")
    import numpy as np

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    path = tmp_path / "net.keras"
    model.save(path)
    with mt.start("k", store=store_uri, framework="keras") as v:
        v.log_artifact(path, kind="model", name="model.bin")  # the name says nothing
    loaded = mt.load("k", store=store_uri)
    x = np.ones((1, 3), dtype="float32")
    assert np.allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.parametrize("damage", ["garble", "symlink"])
def test_push_never_copies_a_damaged_or_linked_blob(tmp_path: Path, store_uri: str, damage: str) -> None:
    import subprocess
    import sys

    secret, blob = _secret_and_stored_blob(tmp_path, store_uri)
    blob.unlink()
    if damage == "symlink":
        blob.symlink_to(secret)
    else:
        blob.write_text('{"a": 2}')
    dest = tmp_path / "dest"
    out = subprocess.run(
        [sys.executable, "-m", "modeltrack", "--store", store_uri, "push", "m@v1", str(dest)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert "run `modeltrack verify`" in out.stderr
    for f in dest.rglob("*") if dest.exists() else []:
        if f.is_file():
            assert b"hunter2" not in f.read_bytes() and b'"a": 2' not in f.read_bytes()
