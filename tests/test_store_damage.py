"""Damaged stores: every command gives a one-line error or works, and ``verify`` names each
damaged path (exit 1), never "ok"."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

import modeltrack as mt
from modeltrack.errors import ModelTrackError

KILLED = textwrap.dedent(
    """
    import os, signal, sys, modeltrack as mt
    v = mt.start("m", store=sys.argv[1])
    for epoch in range(3):
        v.log_metrics({"loss": 1.0 / (epoch + 1)}, step=epoch, epoch=epoch)
        v.flush()
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """v1 finished (metrics, artifact, alias, tags, notes), v2 killed mid-run, v3 deleted by gc."""
    root = tmp_path_factory.mktemp("damage")
    store = root / "store"
    payload = root / "model.bin"
    payload.write_bytes(b"weights" * 100)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MODELTRACK_STRICT", "1")
        with mt.start("m", store=str(store), params={"lr": 0.1}) as v:
            for epoch in range(3):
                v.log_metrics({"loss": 1.0 / (epoch + 1)}, step=epoch, epoch=epoch)
            v.log_artifact(payload, kind="model")
        mt.set_alias("m@v1", "production", store=str(store))
        mt.tag("m@v1", team="a", store=str(store))
        mt.set_notes("m@v1", "first", store=str(store))
        res = subprocess.run([sys.executable, "-c", KILLED, str(store)], capture_output=True)
        assert res.returncode == -signal.SIGKILL, res.stderr
        with mt.start("m", store=str(store)):
            pass
        mt.gc("m", [3], store=str(store))
    return store


V1 = "models/m/versions/1"
V2 = "models/m/versions/2"


def _first(store: Path, pattern: str) -> Path:
    found = sorted(store.glob(pattern))
    assert found, pattern
    return found[0]


def _write(rel: str, text: str) -> Callable[[Path], str]:
    def damage(store: Path) -> str:
        (store / rel).write_text(text)
        return rel

    return damage


def _write_glob(pattern: str, text: str) -> Callable[[Path], str]:
    def damage(store: Path) -> str:
        p = _first(store, pattern)
        p.write_text(text)
        return str(p.relative_to(store))

    return damage


def _delete(rel: str) -> Callable[[Path], str]:
    def damage(store: Path) -> str:
        (store / rel).unlink()
        return rel

    return damage


def _edit_final(change: Callable[[dict], None]) -> Callable[[Path], str]:
    def damage(store: Path) -> str:
        p = store / V1 / "final.json"
        rec = json.loads(p.read_text())
        change(rec)
        p.write_text(json.dumps(rec))
        return f"{V1}/final.json"

    return damage


def _orphan(store: Path) -> str:
    d = store / "models/m/versions/7/records"
    d.mkdir(parents=True)
    (d / "000001.json").write_text('[{"type": "params", "params": {"a": 1}}]')
    return "models/m/versions/7/claim.json"


def _deleted_chunk(store: Path) -> str:
    (store / V2 / "metrics" / "000002.json").unlink()
    return f"{V2}/metrics/000002.json"


def _bad_sha(rec: dict) -> None:
    rec["artifacts"][0]["sha256"] = "../../../../etc/passwd"


def _no_sha(rec: dict) -> None:
    del rec["artifacts"][0]["sha256"]


DAMAGE = {
    "format-garbage": _write("FORMAT", "{"),
    "format-newer": _write("FORMAT", '{"format": 99}'),
    "format-shape": _write("FORMAT", '{"format": "1"}'),
    "alias-garbage": _write_glob("models/m/aliases/*.json", "{"),
    "alias-to-string": _write_glob("models/m/aliases/*.json", '{"alias": "production", "to": "v2", "seq": 1}'),
    "tag-garbage": _write_glob("models/m/tags/*.json", "not json"),
    "tag-without-tags": _write_glob("models/m/tags/*.json", '{"version": 1}'),
    "orphan-version-dir": _orphan,
    "claim-deleted": _delete(f"{V1}/claim.json"),
    "final-deleted": _delete(f"{V1}/final.json"),
    "series-deleted": _delete(f"{V1}/series.json"),
    "chunk-deleted": _deleted_chunk,
    "final-list": _write(f"{V1}/final.json", "[]"),
    "chunk-shape": _write_glob(f"{V2}/metrics/*.json", '{"loss": 5}'),
    "final-nested": _write(f"{V1}/final.json", "[" * 100000 + "]" * 100000),
    "artifact-no-sha": _edit_final(_no_sha),
    "artifact-sha-path": _edit_final(_bad_sha),
    "claim-string": _write(f"{V1}/claim.json", '"x"'),
    "records-shape": _write_glob(f"{V1}/records/*.json", '{"type": "params"}'),
    "notes-shape": _write(f"{V1}/notes.json", "[]"),
    "series-shape": _write(f"{V1}/series.json", '{"loss": {"step": [1, 2], "value": [1.0]}}'),
    "tombstone-garbage": _write("models/m/deleted/3", "{"),
    "v2-first-record-shape": _write_glob(f"{V2}/*.json", "5"),
}


def _reads(store: str) -> list[Callable[[], object]]:
    return [
        lambda: mt.models(store=store),
        lambda: mt.versions("m", store=store),
        lambda: mt.show("m", store=store),
        lambda: mt.show("m@v1", store=store),
        lambda: mt.show("m@v2", store=store),
        lambda: mt.show("m@production", store=store),
        lambda: mt.alias_history("m", store=store),
        lambda: mt.diff("m@v1", "m@v2", store=store),
        lambda: mt.load("m@v1", "path", store=store),
        lambda: mt.gc(store=store, dry_run=True),
    ]


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_damage_gives_clear_errors_and_verify_names_it(template: Path, tmp_path: Path, case: str) -> None:
    store = tmp_path / "store"
    shutil.copytree(template, store, symlinks=True)
    damaged = DAMAGE[case](store)
    tracebacks = []
    for read in _reads(str(store)):
        try:
            read()
        except ModelTrackError as exc:
            assert "\n" not in str(exc).strip(), str(exc)
        except Exception as exc:  # anything else is a traceback for the user
            tracebacks.append(f"{type(exc).__name__}: {exc}"[:300])
    assert not tracebacks, tracebacks
    try:
        report = mt.verify(store=str(store))
    except ModelTrackError as exc:  # a store verify cannot even open must say why
        assert "FORMAT" in str(exc)
        return
    assert not report["ok"], f"verify says ok for {case}"
    keys = [p["key"] for p in report["problems"]]
    assert any(damaged in k or k in damaged for k in keys), (damaged, keys)


def test_the_undamaged_template_verifies(template: Path) -> None:
    report = mt.verify(store=str(template))
    assert report["ok"], report["problems"]
    assert report["records_checked"] > 5 and report["artifacts_checked"] == 1


@pytest.mark.slow
@pytest.mark.parametrize("case", ["final-list", "alias-to-string", "chunk-shape", "final-nested", "claim-deleted"])
def test_cli_on_damaged_store_prints_one_line(template: Path, tmp_path: Path, case: str) -> None:
    store = tmp_path / "store"
    shutil.copytree(template, store, symlinks=True)
    DAMAGE[case](store)
    env = {**os.environ, "MODELTRACK_STORE": str(store)}
    for args in (["models"], ["versions", "m"], ["show", "m@v1"], ["show", "m@v2", "--json"], ["verify"]):
        out = subprocess.run([sys.executable, "-m", "modeltrack", *args], env=env, capture_output=True, text=True)
        assert "Traceback" not in out.stderr, (args, out.stderr[-1500:])
        assert out.returncode in (0, 1), (args, out.returncode, out.stderr)
    verify = subprocess.run([sys.executable, "-m", "modeltrack", "verify"], env=env, capture_output=True, text=True)
    assert verify.returncode == 1 and "DAMAGED" in verify.stdout


def test_listing_index_never_contradicts_the_files(store_uri: str) -> None:
    with mt.start("m", store=store_uri) as v:
        v.log_metrics({"loss": 0.5}, epoch=0)
    assert mt.versions("m", store=store_uri)[0]["metrics"] == {"loss": 0.5}  # now cached
    p = Path(store_uri, "models/m/versions/1/final.json")
    rec = json.loads(p.read_text())
    rec["status"], rec["metrics"]["loss"]["last"] = "failed", 0.25
    p.write_text(json.dumps(rec))
    row = mt.versions("m", store=store_uri)[0]
    assert row["status"] == "failed" and row["metrics"] == {"loss": 0.25}
