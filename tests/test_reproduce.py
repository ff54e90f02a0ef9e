"""``modeltrack reproduce REF``: real training in a temporary git repository (and outside
git), rebuilt code, the re-run compared with the original.

Each framework trains deterministically on CPU from a small data file outside the
repository: v1 committed, v2 with an uncommitted change, then the working tree changes
again; reproducing v2 gives bit-identical metrics, the same params and data, and a re-run
linked to v2. Changing the data file makes the next reproduction differ (exit 4).
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import modeltrack as mt
from modeltrack import reproduce as rp
from modeltrack.capture import env as capture_env

ROOT = Path(__file__).resolve().parents[1]

SKLEARN = """
import argparse
import numpy as np
from sklearn.ensemble import RandomForestClassifier
from cfg import KNOB
from features import scale
try:
    import local_settings  # noqa: F401 - git-ignored: never in a snapshot
except ImportError:
    pass
try:
    import api_token  # noqa: F401 - looks like a credential: never in a snapshot
except ImportError:
    pass

p = argparse.ArgumentParser()
p.add_argument("--data")
a = p.parse_args()
rows = np.loadtxt(a.data, delimiter=",")
X, y = scale(rows[:, :-1]), (rows[:, -1] > 0.5).astype(int)
RandomForestClassifier(n_estimators=KNOB, max_depth=3, random_state=0).fit(X, y)
"""

LIGHTNING = """
import argparse
import numpy as np
import torch
import lightning as L
from torch.utils.data import DataLoader, TensorDataset
from cfg import KNOB

p = argparse.ArgumentParser()
p.add_argument("--data")
a = p.parse_args()
rows = np.loadtxt(a.data, delimiter=",", dtype=np.float32)
L.seed_everything(0, workers=True)


class Net(L.LightningModule):
    def __init__(self, lr):
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))

    def training_step(self, batch, i):
        xb, yb = batch
        loss = torch.nn.functional.mse_loss(self.net(xb), yb)
        self.log("train_loss", loss, on_epoch=True, on_step=False)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


loader = DataLoader(TensorDataset(torch.from_numpy(rows[:, :-1]), torch.from_numpy(rows[:, -1:])), batch_size=16, shuffle=True)
trainer = L.Trainer(max_epochs=3, deterministic=True, accelerator="cpu", devices=1, logger=False,
                    enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
trainer.fit(Net(KNOB), loader)
"""

KERAS = """
import argparse
import numpy as np
import keras
from cfg import KNOB

p = argparse.ArgumentParser()
p.add_argument("--data")
a = p.parse_args()
rows = np.loadtxt(a.data, delimiter=",", dtype=np.float32)
keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(1)])
model.compile(optimizer=keras.optimizers.SGD(learning_rate=KNOB), loss="mse")
model.fit(rows[:, :-1], rows[:, -1:], epochs=3, batch_size=16, shuffle=True, verbose=0)
"""


def _write_data(path: Path, seed: int = 0, n: int = 48) -> None:
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        x = [rng.random() for _ in range(3)]
        lines.append(",".join(f"{v:.6f}" for v in x) + f",{(x[0] + x[1]) / 2:.6f}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def _mt(*args: str, cwd: Path, python: str = sys.executable, env: dict[str, str] | None = None) -> Any:
    return subprocess.run(
        [python, "-m", "modeltrack", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, **(env or {})},
        check=False,
    )


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout


def _new_repo(path: Path, script: str, knob: object) -> Path:
    """A git repository at ``path`` (files already there stay untracked) with train.py and
    cfg.py committed."""
    if not path.exists():
        path.mkdir(parents=True)
    _git_init_over(path)
    (path / "train.py").write_text(script)
    (path / "cfg.py").write_text(f"KNOB = {knob!r}\n")
    (path / ".gitignore").write_text("local_settings.py\n")
    _git(path, "add", "train.py", "cfg.py", ".gitignore")
    _git(path, "commit", "-qm", "v1")
    return path


def _git_init_over(root: Path) -> None:
    _git(root, "init", "-q")
    _git(root, "config", "user.email", "t@example.com")
    _git(root, "config", "user.name", "t")


def _train(repo: Path, model: str, data: Path, store: str, env: dict[str, str] | None = None) -> None:
    out = _mt(
        "--store", store, "run", "--model", model, "--", "python", "train.py", "--data", str(data), cwd=repo, env=env
    )
    assert out.returncode == 0, out.stderr[-3000:]


def _scenario(
    tmp_path: Path, script: str, knobs: tuple[object, object, object], model: str, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """v1 committed, v2 dirty, the working tree changed again, then ``reproduce v2``."""
    store = str(tmp_path / "store")
    data = tmp_path / "data" / "train.csv"
    _write_data(data)
    repo = _new_repo(tmp_path / "repo", script, knobs[0])
    _train(repo, model, data, store, env)
    (repo / "cfg.py").write_text(f"KNOB = {knobs[1]!r}\n")
    _train(repo, model, data, store, env)
    (repo / "cfg.py").write_text(f"KNOB = {knobs[2]!r}\n")  # v3 code, never trained
    out = _mt("--store", store, "reproduce", f"{model}@v2", "--reuse-env", "--json", cwd=repo, env=env)
    assert out.returncode == 0, (out.stdout[-2000:], out.stderr[-3000:])
    result = json.loads(out.stdout)
    report = result["report"]
    assert report["result"] == "match" and report["differs"] == [], report
    assert result["exit_code"] == 0 and report["rerun"] == f"{model}@v3"
    v2, v3 = mt.show(f"{model}@v2", store=store), mt.show(f"{model}@v3", store=store)
    # bit-identical metrics (every point, not only the last and best), same params and data
    assert v2["metrics"] and {k: m["series"] for k, m in v2["metrics"].items()} == {
        k: m["series"] for k, m in v3["metrics"].items()
    }
    assert v2["params"] == v3["params"] and v2["data"] == v3["data"] and v2["data"]
    assert mt.show(f"{model}@v1", store=store)["metrics"] != v2["metrics"]  # the knob matters
    # the re-run is linked to v2 in its record and its tags
    assert v3["info"]["reproduces"] == f"{model}@v2"
    assert v3["tags"] == {"reproduces": f"{model}@v2", "reproduction": "match"}
    # the user's working tree is untouched: no worktree, the v3 edit still there
    assert (repo / "cfg.py").read_text() == f"KNOB = {knobs[2]!r}\n"
    assert len(_git(repo, "worktree", "list").splitlines()) == 1
    assert _git(repo, "status", "--porcelain", "--untracked-files=no").split() == ["M", "cfg.py"]
    # the data file changes: the next reproduction differs
    _write_data(data, seed=1)
    again = _mt("--store", store, "reproduce", f"{model}@v2", "--reuse-env", cwd=repo, env=env)
    assert again.returncode == 4, (again.stdout[-2000:], again.stderr[-3000:])
    assert f"reproduced {model}@v2 as {model}@v4: differs: data" in again.stdout
    return {"store": store, "repo": repo, "result": result, "report_text": again.stdout, "v2": v2, "v3": v3}


@pytest.mark.slow
def test_reproduce_sklearn_in_git_with_an_untracked_module(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    root = tmp_path / "repo"
    root.mkdir()
    (root / "features.py").write_text("def scale(x):\n    return x * 2.0\n")  # untracked
    (root / "local_settings.py").write_text("X = 1\n")  # git-ignored
    (root / "api_token.py").write_text("TOKEN = 'hunter2'\n")  # untracked, looks like a credential
    out = _scenario(tmp_path, SKLEARN, (3, 5, 9), "sk")
    plan = out["result"]["plan"]
    assert plan["code"]["source"] == "git+snapshot"
    assert [f["path"] for f in plan["code"]["snapshot"]] == ["features.py"]
    assert any(p["what"] == "code file api_token.py" and not p["blocking"] for p in plan["problems"])
    assert "data changed: X_train" in out["report_text"]
    assert out["v2"]["params"]["n_estimators"] == 5


@pytest.mark.slow
def test_reproduce_lightning(tmp_path: Path) -> None:
    pytest.importorskip("lightning")
    out = _scenario(tmp_path, LIGHTNING, (0.1, 0.05, 0.5), "pl")
    plan = out["result"]["plan"]
    assert plan["code"]["source"] == "git" and plan["code"]["diff"]
    assert plan["seeds"]["lightning_seed"] == 0 and plan["seeds"]["torch_seed"] == 0
    assert plan["seeds"]["torch_deterministic"] is True
    assert plan["command"]["env"]["PL_GLOBAL_SEED"] == "0"
    assert "data changed: train" in out["report_text"]


@pytest.mark.slow
def test_reproduce_keras(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERAS_BACKEND", os.environ.get("KERAS_BACKEND", "torch"))
    pytest.importorskip("keras")
    out = _scenario(tmp_path, KERAS, (0.1, 0.05, 0.5), "ks", env={"KERAS_BACKEND": "torch"})
    plan = out["result"]["plan"]
    assert plan["seeds"]["keras_seed"] == 0
    assert plan["command"]["env"]["KERAS_BACKEND"] == "torch"
    assert "data changed: train.x" in out["report_text"]


SNAPSHOT_SCRIPT = """
import argparse
import numpy as np
import modeltrack as mt
from cfg import KNOB

p = argparse.ArgumentParser()
p.add_argument("--data")
a = p.parse_args()
rows = np.loadtxt(a.data, delimiter=",")
w = np.zeros(3)
with mt.start("snap", params={"lr": KNOB}) as v:
    v.log_data("train", rows)
    for epoch in range(5):
        grad = rows[:, :3].T @ (rows[:, :3] @ w - rows[:, 3]) / len(rows)
        w -= KNOB * grad
        v.log_metrics({"loss": float(np.mean((rows[:, :3] @ w - rows[:, 3]) ** 2))}, epoch=epoch)
"""


def test_reproduce_outside_git_from_the_code_snapshot(tmp_path: Path) -> None:
    pytest.importorskip("numpy")
    store = str(tmp_path / "store")
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "train.py").write_text(SNAPSHOT_SCRIPT)
    (proj / "cfg.py").write_text("KNOB = 0.3\n")
    data = tmp_path / "data.csv"
    _write_data(data)
    env = {"MODELTRACK_STORE": store}
    out = subprocess.run(
        [sys.executable, "train.py", "--data", str(data)],
        cwd=proj,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
    )
    assert out.returncode == 0, out.stderr
    (proj / "cfg.py").write_text("KNOB = 0.9\n")  # the code changes after the run
    dry = _mt("reproduce", "snap@v1", "--reuse-env", "--dry-run", "--json", cwd=tmp_path, env=env)
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)
    assert plan["code"]["source"] == "snapshot" and plan["code"]["commit"] is None
    assert sorted(f["path"] for f in plan["code"]["snapshot"]) == ["cfg.py", "train.py"]
    assert plan["command"]["argv"][1:] == ["train.py", "--data", str(data)] and plan["command"]["cwd"] == "."
    assert plan["ok"] and plan["environment"]["mode"] == "reuse"
    res = _mt("reproduce", "snap@v1", "--reuse-env", cwd=tmp_path, env=env)
    assert res.returncode == 0, (res.stdout, res.stderr)
    assert "reproduced snap@v1 as snap@v2: match" in res.stdout
    assert "code:      same (code snapshot)" in res.stdout
    v1, v2 = mt.show("snap@v1", store=store), mt.show("snap@v2", store=store)
    assert v1["metrics"]["loss"]["series"] == v2["metrics"]["loss"]["series"]
    assert v2["params"] == {"lr": 0.3} and v2["info"]["reproduces"] == "snap@v1"
    assert (proj / "cfg.py").read_text() == "KNOB = 0.9\n"
    # --dir keeps the rebuilt code; a directory that is not empty is refused
    kept = tmp_path / "kept"
    res = _mt("reproduce", "snap@v1", "--reuse-env", "--dir", str(kept), cwd=tmp_path, env=env)
    assert res.returncode == 0, res.stderr
    assert (kept / "code" / "cfg.py").read_text() == "KNOB = 0.3\n"
    res = _mt("reproduce", "snap@v1", "--reuse-env", "--dir", str(kept), cwd=tmp_path, env=env)
    assert res.returncode == 1 and "not empty" in res.stderr and "Traceback" not in res.stderr


def test_a_missing_commit_is_a_plan_error(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    repo = tmp_path / "gone"
    repo.mkdir()
    _git_init_over(repo)
    (repo / "train.py").write_text(
        'import modeltrack as mt\nwith mt.start("m") as v:\n    v.log_metrics({"loss": 1.0})\n'
    )
    _git(repo, "add", "train.py")
    _git(repo, "commit", "-qm", "one")
    commit = _git(repo, "rev-parse", "HEAD").strip()
    out = subprocess.run(
        [sys.executable, "train.py"],
        cwd=repo,
        capture_output=True,
        text=True,
        env={**os.environ, "MODELTRACK_STORE": store},
    )
    assert out.returncode == 0, out.stderr
    _git(repo, "checkout", "-q", "--orphan", "other")
    _git(repo, "commit", "-qm", "rewritten")
    _git(repo, "branch", "-D", "master" if "master" in _git(repo, "branch") else "main")
    _git(repo, "reflog", "expire", "--expire=now", "--all")
    _git(repo, "gc", "-q", "--prune=now")
    env = {"MODELTRACK_STORE": store}
    dry = _mt("reproduce", "m@v1", "--dry-run", cwd=tmp_path, env=env)
    assert dry.returncode == 1
    assert f"cannot reproduce: commit {commit[:12]}: the commit is not in the repository at {repo}" in dry.stdout
    res = _mt("reproduce", "m@v1", "--reuse-env", cwd=tmp_path, env=env)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert res.stderr.count("\n") == 1 and f"cannot reproduce m@v1: commit {commit[:12]}" in res.stderr
    # an unknown version is an error too, not a traceback
    res = _mt("reproduce", "m@v9", "--dry-run", cwd=tmp_path, env=env)
    assert res.returncode == 1 and "Traceback" not in res.stderr and "no version 9" in res.stderr


def _rec(metrics: dict[str, tuple[float | None, float | None]], **kw: Any) -> dict[str, Any]:
    base = {"model": "m", "version": 1, "status": "finished", "params": {"a": 1}, "data": [], "artifacts": []}
    base["metrics"] = {k: {"last": a, "best": b} for k, (a, b) in metrics.items()}
    return {**base, "environment": {"packages": {"numpy": "2.0"}, "packages_imported": ["numpy"]}, **kw}


def test_compare_is_exact_by_default_and_honours_rtol() -> None:
    a = _rec({"loss": (0.5, 0.25), "nan": (float("nan"), None)})
    b = _rec({"loss": (0.5 + 1e-12, 0.25), "nan": (float("nan"), None)}, version=2)
    exact = rp.compare(a, b)
    assert exact["result"] == "differs" and exact["differs"] == ["metrics"]
    assert exact["metrics"]["loss"]["last"] == {"original": 0.5, "rerun": 0.5 + 1e-12, "same": False}
    assert exact["metrics"]["nan"]["same"] is True
    assert rp.compare(a, b, rtol=1e-9)["result"] == "match"
    c = _rec({"loss": (0.5, 0.25)}, version=3, params={"a": 2}, environment={"packages": {"numpy": "2.1"}})
    report = rp.compare(a, c)
    assert report["differs"] == ["params", "packages", "metrics"]
    assert report["params"]["changed"] == {"a": {"from": 1, "to": 2}}
    assert report["packages"]["differ"] == [{"name": "numpy", "recorded": "2.0", "rerun": "2.1"}]
    assert rp.result_text(report) == "differs: params, packages, metrics"


class _Dist:
    def __init__(self, text: str | None) -> None:
        self.text = text

    def read_text(self, name: str) -> str | None:
        assert name == "direct_url.json"
        return self.text


def test_package_sources_say_where_each_came_from() -> None:
    src = capture_env._source
    assert src(_Dist(None)) is None  # from an index
    assert src(_Dist('{"url": "file:///src/x", "dir_info": {"editable": true}}')) == {
        "url": "file:///src/x",
        "kind": "editable",
    }
    assert src(_Dist('{"url": "file:///src/x", "dir_info": {}}'))["kind"] == "local"
    vcs = src(_Dist('{"url": "https://bob:pw@git.example/x.git", "vcs_info": {"vcs": "git", "commit_id": "abc"}}'))
    assert vcs == {"url": "https://bob:***@git.example/x.git", "kind": "vcs", "vcs": "git", "commit": "abc"}
    assert src(_Dist('{"url": "https://h/x.whl", "archive_info": {}}'))["kind"] == "url"
    assert src(_Dist("not json")) == {"kind": "unknown"}
    problems: list[dict[str, Any]] = []
    env = {
        "packages": {"a": "1", "b": "2", "c": "3", "d": "4"},
        "package_sources": {
            "b": {"kind": "vcs", "vcs": "git", "url": "https://g/b.git", "commit": "abc"},
            "c": {"kind": "local", "url": "file:///no/such/dir"},
        },
        "packages_imported": ["a", "b", "c"],
    }
    install, constraints = rp._requirements(env, None, problems)
    assert [i["spec"] for i in install] == ["a==1", "b @ git+https://g/b.git@abc"]
    assert constraints == ["a==1", "d==4"]
    assert problems and problems[0]["what"] == "package c 3" and "which is gone" in problems[0]["reason"]


def test_plan_and_report_json_match_docs(tmp_path: Path) -> None:
    from test_json_docs import _documented

    store = str(tmp_path / "store")
    with mt.start("m", store=store, params={"a": 1}) as v:
        v.log_metrics({"loss": 1.0})
    plan = rp.public(rp.plan(_repo(store), "m@v1", reuse_env=True))
    assert _documented("## `modeltrack reproduce REF --dry-run --json`") <= set(plan)
    report = rp.compare(mt.show("m@v1", store=store), mt.show("m@v1", store=store))
    assert report["result"] == "match"
    assert _documented("## `modeltrack reproduce REF --json`") <= {
        "plan",
        "report",
        "exit_code",
        "rerun_exit_code",
        "seconds",
    }
    assert _documented("### the report") <= set(report)


def _repo(store: str) -> Any:
    from modeltrack.repo import Repo

    return Repo(store)


@pytest.mark.slow
def test_reproduce_in_a_fresh_environment_from_the_package_index(tmp_path: Path) -> None:
    """The original runs in a small venv (scikit-learn from the package index); reproduce
    builds another one from the record alone and gets bit-identical metrics."""
    pytest.importorskip("sklearn")
    orig = tmp_path / "orig-env"
    subprocess.run([sys.executable, "-m", "venv", str(orig)], check=True)
    py = str(orig / "bin" / "python")
    pip = subprocess.run(
        [py, "-m", "pip", "install", "-q", "scikit-learn", "-c", str(ROOT / "constraints.txt")],
        capture_output=True,
        text=True,
    )
    assert pip.returncode == 0, pip.stderr[-3000:]
    rp.install_self(py)
    store = str(tmp_path / "store")
    data = tmp_path / "data" / "train.csv"
    _write_data(data)
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "features.py").write_text("def scale(x):\n    return x\n")
    _git_init_over(repo)
    (repo / "train.py").write_text(SKLEARN)
    (repo / "cfg.py").write_text("KNOB = 4\n")
    _git(repo, "add", "train.py", "cfg.py", "features.py")
    _git(repo, "commit", "-qm", "v1")
    out = _mt(
        "--store",
        store,
        "run",
        "--model",
        "fresh",
        "--",
        "python",
        "train.py",
        "--data",
        str(data),
        cwd=repo,
        python=py,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    dry = _mt("--store", store, "reproduce", "fresh@v1", "--dry-run", "--json", cwd=repo, python=py)
    plan = json.loads(dry.stdout)
    installed = {i["name"] for i in plan["environment"]["install"]}
    assert {"scikit-learn", "numpy", "scipy"} <= installed and "modeltrack" not in installed
    assert plan["environment"]["python"]["note"] is None  # the recorded interpreter version
    res = _mt(
        "--store",
        store,
        "reproduce",
        "fresh@v1",
        "--json",
        "--constraint",
        str(ROOT / "constraints.txt"),
        cwd=repo,
        python=py,
    )
    assert res.returncode == 0, (res.stdout[-2000:], res.stderr[-4000:])
    assert "step 2/4: building a fresh environment" in res.stderr and "installing" in res.stderr
    report = json.loads(res.stdout)["report"]
    assert report["result"] == "match" and report["packages"]["same"] and report["packages"]["count"] >= 3
    v1, v2 = mt.show("fresh@v1", store=store), mt.show("fresh@v2", store=store)
    assert v1["metrics"] == v2["metrics"] and v1["metrics"]
    assert v2["environment"]["executable"] != v1["environment"]["executable"]  # another environment
    assert "modeltrack-reproduce-" in v2["environment"]["executable"]
    assert v2["info"]["reproduces"] == "fresh@v1"


def test_uv_gets_the_index_settings_of_the_pip_configuration() -> None:
    config = (
        ":env:.find-links='/opt/wheels'\n"
        "global.extra-index-url='file:///a/simple file:///b/simple'\n"
        "global.find-links='/opt/wheels'\n"
        "global.index-url='https://mirror.example/simple'\n"
        "global.constraint='/etc/pip/c.txt'\n"
        "global.timeout='60'\n"
    )
    assert rp.uv_options(config) == [
        "--find-links", "/opt/wheels",
        "--extra-index-url", "file:///a/simple",
        "--extra-index-url", "file:///b/simple",
        "--index-url", "https://mirror.example/simple",
        "-c", "/etc/pip/c.txt",
    ]  # fmt: skip


def test_snapshot_leaves_out_files_that_assign_a_credential() -> None:
    from modeltrack.capture.code import holds_credential

    assert holds_credential('API_KEY = "sk-live-1234567890"\n')
    assert holds_credential("db_password: str = 'hunter2hunter2'\n")
    assert not holds_credential('tokenizer_name = "bert-base-uncased"\nlr = 0.1\nkey = os.environ["KEY"]\n')


def test_reuse_env_lists_every_package_that_differs() -> None:
    got = rp.package_differences({"numpy": "2.0", "gone": "1", "modeltrack": "0.0"}, {"numpy": "2.1", "new": "3"})
    assert got == [
        {"name": "gone", "recorded": "1", "current": None},
        {"name": "new", "recorded": None, "current": "3"},
        {"name": "numpy", "recorded": "2.0", "current": "2.1"},
    ]


def test_a_damaged_reproduction_record_is_reported_not_trusted() -> None:
    from modeltrack import records
    from modeltrack.errors import CorruptRecordError

    key = "models/m/versions/1/environment.json"
    assert records.validate("environment", {"python": "3.11.7"}, key)  # older records: none of it
    ok = {"command": ["python", "t.py"], "env": {"PL_GLOBAL_SEED": "0"}, "packages_imported": ["numpy"]}
    ok["code"] = {"root": "/r", "script": "t.py", "cwd": ".", "snapshot": [{"path": "t.py", "size": 3}], "skipped": []}
    assert records.validate("environment", ok, key)
    for bad, words in (
        ({**ok, "command": "python t.py"}, "'command' must be a list"),
        ({**ok, "code": {**ok["code"], "snapshot": [{"path": "../../etc/passwd"}]}}, "must be a relative path"),
        ({**ok, "env": {"X": 1}}, "'env'['X'] must be a string"),
    ):
        with pytest.raises(CorruptRecordError, match=re.escape(words)):
            records.validate("environment", bad, key)


def test_a_script_run_from_outside_its_repository_records_the_repository(tmp_path: Path) -> None:
    repo = tmp_path / "proj"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "train.py").write_text(
        "import modeltrack as mt\nwith mt.start('outside', store=__import__('sys').argv[1]) as v:\n"
        "    v.log_metrics({'loss': 1.0}, epoch=0)\n"
    )
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "add", "train.py"], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    elsewhere = tmp_path / "scratch"
    elsewhere.mkdir()
    store = str(tmp_path / "store")
    out = subprocess.run([sys.executable, str(repo / "train.py"), store], cwd=elsewhere, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    env = mt.show("outside", store=store)["environment"]
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert env["git"]["commit"] == head and env["git"]["root"] == str(repo.resolve())
    assert env["code"]["script"] == "train.py"
