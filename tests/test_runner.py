"""``modeltrack run -- python train.py``: zero-code autologging of an unmodified script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import modeltrack as mt
from modeltrack import runner

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modeltrack", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_child_command_uses_this_interpreter() -> None:
    assert runner.child_command(["--", "python", "t.py", "-x"]) == [sys.executable, "t.py", "-x"]
    assert runner.child_command(["python3", "t.py"]) == [sys.executable, "t.py"]
    assert runner.child_command(["train.py", "--lr", "1"]) == [sys.executable, "train.py", "--lr", "1"]
    with pytest.raises(mt.ModelTrackError, match="needs a command"):
        runner.child_command(["--"])
    with pytest.raises(mt.ModelTrackError, match="not found"):
        runner.child_command(["no-such-program-here-xyz"])


def test_child_env_switches_autolog_on() -> None:
    env = runner.child_env("churn", "/tmp/store", base={"PYTHONPATH": f"/a{os.pathsep}{runner.BOOT_DIR}"})
    assert env["MODELTRACK_AUTOLOG"] == "1"
    assert env["MODELTRACK_MODEL"] == "churn" and env["MODELTRACK_STORE"] == "/tmp/store"
    assert env["PYTHONPATH"].split(os.pathsep) == [str(runner.BOOT_DIR), "/a"]
    assert (runner.BOOT_DIR / "sitecustomize.py").is_file()


def test_exit_status_is_forwarded(tmp_path: Path, store_uri: str) -> None:
    out = _run("--store", store_uri, "run", "--", "python", "-c", "import sys; sys.exit(3)", cwd=tmp_path)
    assert out.returncode == 3
    assert "recorded no version" in out.stderr


@pytest.mark.slow
def test_run_records_an_unmodified_script(tmp_path: Path, store_uri: str) -> None:
    pytest.importorskip("sklearn")
    script = ROOT / "examples" / "zero_code_train.py"
    assert "modeltrack" not in script.read_text().split('"""', 2)[2]  # no import, no tracking code
    # PYTHONPATH without the bootstrap, MODELTRACK_AUTOLOG unset: `run` does it all.
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELTRACK_AUTOLOG")}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "modeltrack",
            "run",
            "--model",
            "wine",
            "--store",
            store_uri,
            "--",
            "python",
            str(script),
            "--n-estimators",
            "5",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "test accuracy" in out.stdout
    assert "wine@v1" in out.stderr and "1 version recorded" in out.stderr
    rec = json.loads(_run("--store", store_uri, "show", "wine@v1", "--json").stdout)
    assert rec["status"] == "finished" and rec["framework"] == "sklearn"
    assert rec["params"]["n_estimators"] == 5
    assert "train_accuracy" in rec["metrics"] and "test_accuracy_score" in rec["metrics"]
    assert rec["environment"]["command"][1].endswith("zero_code_train.py")
    assert [a["kind"] for a in rec["artifacts"]] == ["model"]

    out = _run("run", "--json", "--model", "wine", "--store", store_uri, "--", "python", str(script), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["exit_code"] == 0 and [v["ref"] for v in res["versions"]] == ["wine@v2"]


@pytest.mark.slow
def test_failing_script_fails_its_version(tmp_path: Path, store_uri: str) -> None:
    pytest.importorskip("sklearn")
    script = tmp_path / "bad_train.py"
    script.write_text(
        "from sklearn.linear_model import LogisticRegression\nLogisticRegression().fit([[0.0], [1.0]], [1, 1])\n"
    )
    out = _run("run", "--store", store_uri, "--", "python", str(script), cwd=tmp_path)
    assert out.returncode == 1
    assert "bad_train@v1" in out.stderr and "failed" in out.stderr
    assert mt.show("bad_train@v1", store=store_uri)["status"] == "failed"
