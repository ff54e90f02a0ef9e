"""Bad input gets a clear error (or a safe record) and leaves the store intact."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import modeltrack as mt
from modeltrack.errors import (
    AliasNotFoundError,
    ArtifactPathError,
    CorruptRecordError,
    InvalidNameError,
    ModelNotFoundError,
    StoreError,
    StoreFormatError,
    StoreNotWritableError,
    VersionNotFoundError,
)


def snapshot(root: str) -> dict[str, bytes]:
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            out[str(p.relative_to(root))] = p.read_bytes()
    return out


@pytest.mark.parametrize("name", ["a/b", "..", "../evil", "has space", "", "x" * 1000, ".hidden", "-dash", 3])
def test_bad_model_names(store_uri: str, name: object) -> None:
    with mt.start("good", store=store_uri):
        pass
    before = snapshot(store_uri)
    with pytest.raises(InvalidNameError, match="model name") as info:
        mt.start(name, store=store_uri)  # type: ignore[arg-type]
    assert "A-Z a-z 0-9" in str(info.value)  # says how to fix it
    assert snapshot(store_uri) == before


def test_long_name_message_is_short(store_uri: str) -> None:
    with pytest.raises(InvalidNameError) as info:
        mt.start("x" * 1000, store=store_uri)
    assert len(str(info.value)) < 300 and "1000 characters" in str(info.value)


def test_missing_references(store_uri: str) -> None:
    with mt.start("m", store=store_uri):
        pass
    with pytest.raises(ModelNotFoundError, match="no model 'nope'.*known models: m"):
        mt.show("nope", store=store_uri)
    with pytest.raises(VersionNotFoundError, match="no version 7"):
        mt.show("m@v7", store=store_uri)
    with pytest.raises(AliasNotFoundError, match="no alias 'production'"):
        mt.show("m@production", store=store_uri)
    with pytest.raises(InvalidNameError):
        mt.show("m@", store=store_uri)
    with pytest.raises(InvalidNameError):
        mt.set_alias("m@v1", "latest", store=store_uri)
    with pytest.raises(InvalidNameError):
        mt.set_alias("m@v1", "v2", store=store_uri)


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "a/../../b", "C:/x", "a\\b", "a//b"])
def test_artifact_names_cannot_escape(store_uri: str, tmp_path: Path, name: str) -> None:
    f = tmp_path / "f.bin"
    f.write_bytes(b"x")
    with mt.start("m", store=store_uri) as v:
        with pytest.raises(ArtifactPathError, match="escape"):
            v.log_artifact(f, name=name)
    assert mt.show("m", store=store_uri)["artifacts"] == []
    assert not list(Path(store_uri).rglob("passwd"))


def test_symlink_out_of_logged_directory(store_uri: str, tmp_path: Path) -> None:
    d = tmp_path / "ckpt"
    d.mkdir()
    (d / "ok.bin").write_bytes(b"ok")
    (d / "leak").symlink_to("/etc/hostname")
    with mt.start("m", store=store_uri) as v:
        with pytest.raises(ArtifactPathError, match="symlink"):
            v.log_artifact(d)
    assert mt.show("m", store=store_uri)["artifacts"] == []


def test_missing_artifact_file(store_uri: str, tmp_path: Path) -> None:
    with mt.start("m", store=store_uri) as v:
        with pytest.raises(FileNotFoundError, match="does not exist"):
            v.log_artifact(tmp_path / "nope.ckpt")


def test_store_path_is_a_file(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("not a dir")
    with pytest.raises(StoreError, match="is a file"):
        mt.start("m", store=str(f))
    assert f.read_text() == "not a dir"


def test_read_only_store(readonly_dir: Path) -> None:
    with pytest.raises(StoreNotWritableError, match="read-only.*MODELTRACK_STORE"):
        mt.start("m", store=str(readonly_dir / "store"))
    assert os.listdir(readonly_dir) == []


def test_full_store_keeps_what_it_has(full_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A disk filling up mid-run: the artifact write fails with a clear error, and the
    version and store stay readable."""
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(1024 * 1024))
    store = str(full_dir / "store")
    with mt.start("m", store=store) as v:
        v.log_metrics({"loss": 1.0}, epoch=0)
        with pytest.raises(StoreNotWritableError, match="disk is full"):
            v.log_artifact(big)
    rec = mt.show("m", store=store)
    assert rec["status"] == "finished" and rec["artifacts"] == [] and rec["metrics"]["loss"]["last"] == 1.0


def test_store_of_newer_format_is_refused(store_uri: str) -> None:
    with mt.start("m", store=store_uri):
        pass
    Path(store_uri, "FORMAT").write_text(json.dumps({"format": 99}))
    before = snapshot(store_uri)
    with pytest.raises(StoreFormatError, match="format 99.*upgrade"):
        mt.versions("m", store=store_uri)
    with pytest.raises(StoreFormatError):
        mt.start("m", store=store_uri)
    assert snapshot(store_uri) == before


def test_directory_that_is_not_a_store(tmp_path: Path) -> None:
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "notes.txt").write_text("mine")
    with pytest.raises(StoreFormatError, match="not a modeltrack store"):
        mt.start("m", store=str(tmp_path / "home"))
    assert sorted(os.listdir(tmp_path / "home")) == ["notes.txt"]


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupted_version_file(store_uri: str, damage: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for _ in range(2):
        with mt.start("m", store=store_uri) as v:
            v.log_metrics({"loss": 1.0}, epoch=0)
    final = Path(store_uri, "models/m/versions/1/final.json")
    text = final.read_bytes()
    final.write_bytes({"truncate": text[: len(text) // 2], "garbage": b"\x00\xff{", "empty": b""}[damage])
    with pytest.raises(CorruptRecordError, match="final.json is damaged.*verify"):
        mt.show("m@v1", store=store_uri)
    # Listings keep working, and list the damaged version as such: the summary index never
    # shows a cached row that disagrees with the files, and the files alone say the same.
    with pytest.warns(Warning):
        assert [r["status"] for r in mt.versions("m", store=store_uri)] == ["corrupt", "finished"]
    monkeypatch.setenv("MODELTRACK_INDEX", "0")
    with pytest.warns(Warning):
        rows = mt.versions("m", store=store_uri)
    assert [r["status"] for r in rows] == ["corrupt", "finished"]
    assert mt.show("m@v2", store=store_uri)["status"] == "finished"
    res = mt.verify(store=store_uri)
    assert not res["ok"] and res["problems"][0]["key"] == "models/m/versions/1/final.json"


def test_unknown_store_scheme() -> None:
    with pytest.raises(StoreError, match="unknown store scheme 'ftp'"):
        mt.start("m", store="ftp://host/x")


@pytest.mark.parametrize("ref", [42, None, b"m", ["m"], 1.5])
def test_non_string_references_to_the_api(store_uri: str, ref: object) -> None:
    with mt.start("m", store=store_uri):
        pass
    calls = [
        lambda: mt.show(ref, store=store_uri),  # type: ignore[arg-type]
        lambda: mt.resolve(ref, store=store_uri),  # type: ignore[arg-type]
        lambda: mt.diff("m", ref, store=store_uri),  # type: ignore[arg-type]
        lambda: mt.diff(ref, "m", store=store_uri),  # type: ignore[arg-type]
        lambda: mt.set_alias(ref, "production", store=store_uri),  # type: ignore[arg-type]
        lambda: mt.promote(ref, store=store_uri),  # type: ignore[arg-type]
        lambda: mt.tag(ref, {"a": "b"}, store=store_uri),  # type: ignore[arg-type]
        lambda: mt.set_notes(ref, "x", store=store_uri),  # type: ignore[arg-type]
        lambda: mt.changelog(ref, store=store_uri),  # type: ignore[arg-type]
        lambda: mt.artifact_path(ref, store=store_uri),  # type: ignore[arg-type]
    ]
    if ref is not None:  # changelog(ref, None) means "against the previous version"
        calls.append(lambda: mt.changelog("m", ref, store=store_uri))  # type: ignore[arg-type]
    for call in calls:
        with pytest.raises(
            InvalidNameError, match=rf"reference must be a string like 'churn@v3', got {type(ref).__name__}"
        ):
            call()
    with pytest.raises(InvalidNameError, match=r"model name must be a string .* got int 42"):
        mt.versions(42, store=store_uri)  # type: ignore[arg-type]


def test_bad_api_arguments(store_uri: str) -> None:
    with mt.start("m", store=store_uri):
        pass
    from modeltrack.errors import InvalidValueError

    with pytest.raises(InvalidNameError, match="alias must be a string"):
        mt.alias_history("m", 5, store=store_uri)  # type: ignore[arg-type]
    with pytest.raises(InvalidValueError, match="notes must be a string"):
        mt.set_notes("m", 5, store=store_uri)  # type: ignore[arg-type]
    with pytest.raises(InvalidValueError, match="metric must be a metric name"):
        mt.promote("m@v1", metric=5, store=store_uri)  # type: ignore[arg-type]
    with pytest.raises(InvalidValueError, match="mode must be"):
        mt.promote("m@v1", metric="loss", mode="lowest", store=store_uri)
    for versions in (["1"], [True], [0], "1"):
        with pytest.raises(InvalidValueError, match="versions must be version numbers"):
            mt.gc("m", versions, dry_run=True, store=store_uri)  # type: ignore[arg-type]
    for grace in (-5, float("nan"), "1h"):
        with pytest.raises(InvalidValueError, match="grace"):
            mt.gc("m", [1], dry_run=True, grace_seconds=grace, store=store_uri)  # type: ignore[arg-type]
    assert [v["version"] for v in mt.versions("m", store=store_uri)] == [1]


@pytest.mark.parametrize("ref", ["m@v" + "9" * 5000, "m@" + "9" * 19, "m@v²", "m@v٣", "m@²"])
def test_overlong_and_non_ascii_version_numbers(ref: str) -> None:
    from modeltrack.refs import parse_ref

    with pytest.raises(InvalidNameError) as info:
        parse_ref(ref)
    assert len(str(info.value)) < 300
    assert parse_ref("m@v" + "9" * 18).version == 10**18 - 1
