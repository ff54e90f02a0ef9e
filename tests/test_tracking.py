"""The tracking API on every backend: start/finish, params, metrics, artifacts, data."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import modeltrack as mt
from modeltrack.errors import ModelTrackWarning, VersionStateError


def test_context_manager_records_everything(any_store: str, tmp_path: Path) -> None:
    f = tmp_path / "model.bin"
    f.write_bytes(b"weights" * 100)
    X = np.arange(12, dtype=np.float32).reshape(4, 3)
    with mt.start("churn", params={"lr": 0.01, "opt": {"name": "adam", "betas": (0.9, 0.99)}}, store=any_store) as v:
        assert v.model == "churn" and v.number == 1
        for epoch in range(3):
            v.log_metrics({"loss": 1.0 / (epoch + 1), "acc": 0.5 + epoch / 10}, step=(epoch + 1) * 10, epoch=epoch)
        v.log_data("train", X)
        v.log_artifact(f, kind="model")
        v.set_tags(experimental=None, dataset="v2")
    rec = mt.show("churn", store=any_store)
    assert rec["status"] == "finished" and rec["version"] == 1
    assert rec["params"] == {"lr": 0.01, "opt.name": "adam", "opt.betas": [0.9, 0.99]}
    loss = rec["metrics"]["loss"]
    assert [p["epoch"] for p in loss["series"]] == [0, 1, 2]
    assert [p["step"] for p in loss["series"]] == [10, 20, 30]
    assert loss["last"] == pytest.approx(1 / 3) and loss["best"] == pytest.approx(1 / 3)
    assert rec["metrics"]["acc"]["best"] == pytest.approx(0.7)
    assert rec["data"][0]["shape"] == [4, 3] and rec["data"][0]["fingerprint"].startswith("sha256:")
    import hashlib

    art = rec["artifacts"][0]
    assert art["sha256"] == hashlib.sha256(f.read_bytes()).hexdigest() and art["size"] == 700
    assert rec["tags"] == {"experimental": None, "dataset": "v2"}
    assert rec["environment"]["python"] and rec["environment"]["packages"]
    assert rec["finished_at"] is not None


def test_exception_marks_failed_and_propagates(any_store: str) -> None:
    class Boom(Exception):
        pass

    err = Boom("bad batch")
    with pytest.raises(Boom) as info:
        with mt.start("m", store=any_store) as v:
            v.log_metrics({"loss": 1.0}, epoch=0)
            raise err
    assert info.value is err
    rec = mt.show("m@v1", store=any_store)
    assert rec["status"] == "failed"
    assert "Boom: bad batch" in rec["error"]
    assert rec["metrics"]["loss"]["last"] == 1.0


def test_explicit_start_finish_and_numbers(any_store: str) -> None:
    v1 = mt.start("m", store=any_store)
    v2 = mt.start("m", store=any_store)
    assert (v1.number, v2.number) == (1, 2)
    v1.finish()
    v2.fail(RuntimeError("x"))
    assert [r["status"] for r in mt.versions("m", store=any_store)] == ["finished", "failed"]
    assert mt.resolve("m", store=any_store) == ("m", 1)  # latest *finished*


def test_second_finish_is_harmless_and_version_immutable(any_store: str) -> None:
    v = mt.start("m", store=any_store)
    v.log_metrics({"a": 1.0})
    v.finish()
    with pytest.warns(ModelTrackWarning, match="already finished"):
        v.finish()
    with pytest.raises(VersionStateError, match="immutable"):
        v.log_params({"x": 1})
    with pytest.raises(VersionStateError):
        v.log_metrics({"a": 2.0})
    assert mt.show("m", store=any_store)["metrics"]["a"]["last"] == 1.0


def test_metric_value_kinds(any_store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setenv("MODELTRACK_STRICT", "0")
    with mt.start("m", store=any_store) as v:
        v.log_metrics(
            {
                "np": np.float32(0.5),
                "t": torch.tensor(0.25),
                "i": np.int64(3),
                "nan": float("nan"),
                "inf": float("inf"),
                "ninf": -math.inf,
                "b": True,
            },
            step=0,
        )
        with pytest.warns(ModelTrackWarning, match="not a number"):
            v.log_metrics({"s": "high", "n": None}, step=1)
    m = mt.show("m", store=any_store)["metrics"]
    assert m["np"]["last"] == 0.5 and m["t"]["last"] == 0.25 and m["i"]["last"] == 3.0 and m["b"]["last"] == 1.0
    # Non-finite values are kept in the store and shown as null in strict JSON.
    assert m["nan"]["last"] is None and m["inf"]["last"] is None and len(m["ninf"]["series"]) == 1
    assert "s" not in m and "n" not in m
    raw = mt.Repo(any_store).series("m", 1, None) or mt.Repo(any_store).series("m", 1, {})
    assert math.isnan(raw["nan"]["value"][0]) and raw["inf"]["value"][0] == math.inf


def test_strings_as_metrics_raise_in_strict_mode(any_store: str) -> None:
    from modeltrack.errors import InvalidMetricError

    v = mt.start("m", store=any_store)
    with pytest.raises(InvalidMetricError, match="not a number"):
        v.log_metrics({"s": "x"})
    v.finish()


def test_steps_going_backwards_are_kept_with_a_warning(any_store: str) -> None:
    with mt.start("m", store=any_store) as v:
        v.log_metrics({"loss": 1.0}, step=10)
        with pytest.warns(ModelTrackWarning, match="backwards"):
            v.log_metrics({"loss": 2.0}, step=5)
    series = mt.show("m", store=any_store)["metrics"]["loss"]["series"]
    assert [p["step"] for p in series] == [10, 5]


def test_artifact_dedup_and_directories(any_store: str, tmp_path: Path) -> None:
    d = tmp_path / "ckpt"
    (d / "sub").mkdir(parents=True)
    (d / "a.bin").write_bytes(b"same")
    (d / "sub" / "b.bin").write_bytes(b"same")
    with mt.start("m", store=any_store) as v:
        recs = v.log_artifact(d, kind="checkpoint")
        v.log_artifact(d / "a.bin", name="copy/a.bin")
    assert sorted(r["path"] for r in recs) == ["ckpt/a.bin", "ckpt/sub/b.bin"]
    repo = mt.Repo(any_store)
    blobs = list(repo.store.walk("blobs"))
    assert len(blobs) == 1  # identical content stored once
    assert len(mt.show("m", store=any_store)["artifacts"]) == 3


def test_release_and_best(any_store: str, tmp_path: Path) -> None:
    files = []
    for i in range(3):
        f = tmp_path / f"e{i}.ckpt"
        f.write_bytes(f"epoch {i}".encode())
        files.append(f)
    with mt.start("m", store=any_store) as v:
        v.log_artifact(files[0], kind="checkpoint", epoch=0, best=True)
        v.log_artifact(files[1], kind="checkpoint", epoch=1, best=True)
        v.log_artifact(files[2], kind="checkpoint", epoch=2)
        v.release_artifact("e0.ckpt")
    arts = {a["path"]: a for a in mt.show("m", store=any_store)["artifacts"]}
    assert set(arts) == {"e1.ckpt", "e2.ckpt"}
    assert arts["e1.ckpt"].get("best") is True and not arts["e2.ckpt"].get("best")
    assert mt.artifact_path("m", kind="checkpoint", store=any_store).endswith("e1.ckpt")


def test_params_conflicts_and_stand_ins(any_store: str) -> None:
    from modeltrack.errors import ParamConflictError

    class Net:
        pass

    with mt.start("m", store=any_store) as v:
        v.log_params(
            {
                "a": 1,
                "cls": Net,
                "fn": len,
                "s": {3, 1, 2},
                "obj": Net(),
                "big": "x" * 20000,
                "arr": np.zeros((100, 100)),
                "small": np.arange(3),
            }
        )
        v.log_params({"a": 1})  # same value again: fine
        with pytest.raises(ParamConflictError, match="'a'"):
            v.log_params({"a": 2})
        with pytest.raises(ParamConflictError):
            v.log_params({"x.y": 1, "x": {"y": 2}})
    p = mt.show("m", store=any_store)["params"]
    assert p["a"] == 1 and p["cls"].endswith("Net") and p["fn"] == "len" and p["s"] == [1, 2, 3]
    assert p["obj"].startswith("<") and "truncated" in p["big"] and len(p["big"]) < 10100
    assert p["arr"] == "<ndarray shape=(100, 100) dtype=float64>" and p["small"] == [0, 1, 2]


def test_data_fingerprints(tmp_path: Path) -> None:
    import pandas as pd
    import torch

    from modeltrack.capture.data import fingerprint

    a = np.arange(6, dtype=np.float64).reshape(2, 3)
    assert fingerprint(a) == fingerprint(a.copy())
    assert fingerprint(a)["fingerprint"] != fingerprint(a.astype(np.float32))["fingerprint"]
    assert fingerprint(a)["fingerprint"] != fingerprint(a.reshape(3, 2))["fingerprint"]
    b = a.copy()
    b[1, 2] += 1e-12
    assert fingerprint(a)["fingerprint"] != fingerprint(b)["fingerprint"]
    assert fingerprint(np.asfortranarray(a))["fingerprint"] == fingerprint(a)["fingerprint"]
    t = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    assert fingerprint(t)["shape"] == [2, 3] and fingerprint(t)["dtype"] == "torch.float32"
    assert fingerprint(torch.zeros(2, dtype=torch.bfloat16))["fingerprint"].startswith("sha256:")
    df = pd.DataFrame({"x": [1, 2], "c": ["a", "b"]})
    assert fingerprint(df) == fingerprint(df.copy())
    assert fingerprint(df)["fingerprint"] != fingerprint(df.assign(c=["a", "c"]))["fingerprint"]
    assert fingerprint([1, 2, 3])["shape"] == [3]
    assert fingerprint([["a", 1], ["b", 2]])["fingerprint"].startswith("sha256:")


def test_environment_has_no_secrets(any_store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELTRACK_API_TOKEN", "supersecret1")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "supersecret2")
    monkeypatch.setattr("sys.orig_argv", ["python", "train.py", "--api-key", "supersecret3", "--password=supersecret4"])
    with mt.start("m", store=any_store):
        pass
    env = mt.show("m", store=any_store)["environment"]
    import json

    text = json.dumps(env)
    assert "supersecret" not in text
    assert env["env"]["CUDA_VISIBLE_DEVICES"] == "0"
    assert env["command"] == ["python", "train.py", "--api-key", "***", "--password=***"]


def test_git_capture_and_dirty_diff(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    repo = tmp_path / "proj"
    repo.mkdir()
    run = lambda *a: subprocess.run(["git", *a], cwd=repo, check=True, capture_output=True)  # noqa: E731
    run("init", "-q", "-b", "main")
    run("config", "user.email", "t@example.com")
    run("config", "user.name", "t")
    (repo / "train.py").write_text("print(1)\n")
    (repo / ".gitignore").write_text("secret.env\n")
    run("add", ".")
    run("commit", "-qm", "init")
    (repo / "train.py").write_text("print(2)\n")
    (repo / "secret.env").write_text("TOKEN=hunter2\n")
    monkeypatch.chdir(repo)
    store = str(tmp_path / "s")
    with mt.start("m", store=store):
        pass
    env = mt.show("m", store=store)["environment"]
    assert env["git"]["branch"] == "main" and env["git"]["dirty"] is True and len(env["git"]["commit"]) == 40
    diff = mt.Repo(store).store.read("models/m/versions/1/code.diff").decode()
    assert "+print(2)" in diff and "hunter2" not in diff


def test_metrics_are_flushed_in_background(any_store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setenv("MODELTRACK_FLUSH_INTERVAL", "0.05")
    v = mt.start("m", store=any_store)
    v.log_metrics({"loss": 0.5}, step=1)
    repo = mt.Repo(any_store)
    deadline = time.time() + 5
    while time.time() < deadline and not repo.series("m", 1):
        time.sleep(0.02)
    assert repo.series("m", 1)["loss"]["value"] == [0.5]
    assert mt.show("m@v1", store=any_store)["status"] == "running"
    v.finish()


def test_numbers_stay_max_plus_one_with_the_allocation_hint(tmp_path: Path) -> None:
    import shutil

    store = str(tmp_path / "store")
    for _ in range(3):
        with mt.start("hint", store=store):
            pass
    other = subprocess.run(
        [sys.executable, "-c", f"import modeltrack as mt; mt.start('hint', store={store!r}).finish()"], check=True
    )
    assert other.returncode == 0
    with mt.start("hint", store=store) as v:  # the hint (4) was taken by the other process
        pass
    assert v.number == 5
    shutil.rmtree(store)  # a new store at the same place starts again at 1
    with mt.start("hint", store=store) as v:
        pass
    assert v.number == 1
