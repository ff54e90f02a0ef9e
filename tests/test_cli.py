"""The `modeltrack` command line: tables, --json documents, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import modeltrack as mt
from modeltrack.cli import main, sparkline


def cli(*args: str, store: str | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "modeltrack", *args]
    if store is not None:
        cmd += ["--store", store]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@pytest.fixture
def filled(store_uri: str, tmp_path: Path) -> str:
    f = tmp_path / "model.bin"
    f.write_bytes(b"w")
    for lr in (0.1, 0.2):
        with mt.start("churn", params={"lr": lr}, store=store_uri) as v:
            for e in range(3):
                v.log_metrics({"loss": lr / (e + 1)}, step=e, epoch=e)
            v.log_artifact(f, kind="model")
    return store_uri


def test_json_documents_have_the_documented_shape(filled: str) -> None:
    models = json.loads(cli("models", "--json", store=filled).stdout)
    assert models == [
        {"name": "churn", "versions": 2, "latest": 2, "aliases": {}, "updated_at": models[0]["updated_at"]}
    ]
    versions = json.loads(cli("versions", "churn", "--json", store=filled).stdout)
    assert [v["version"] for v in versions] == [1, 2]
    for key in ("version", "status", "created_at", "finished_at", "aliases", "tags", "metrics"):
        assert key in versions[0]
    show = json.loads(cli("show", "churn@v1", "--json", store=filled).stdout)
    for key, typ in {
        "model": str,
        "version": int,
        "status": str,
        "created_at": str,
        "aliases": list,
        "tags": dict,
        "params": dict,
        "metrics": dict,
        "environment": dict,
        "data": list,
        "artifacts": list,
    }.items():
        assert isinstance(show[key], typ), key
    assert show["metrics"]["loss"]["series"][2] == {"step": 2, "epoch": 2, "value": pytest.approx(0.1 / 3)}
    for key in ("python", "platform", "packages", "git", "command"):
        assert key in show["environment"]
    assert set(show["artifacts"][0]) >= {"path", "sha256", "size", "kind"}
    d = json.loads(cli("diff", "churn@1", "churn@2", "--json", store=filled).stdout)
    assert d["params"]["changed"] == {"lr": {"from": 0.1, "to": 0.2}}


def test_human_output_and_registry_commands(filled: str) -> None:
    out = cli("versions", "churn", store=filled).stdout
    assert "VERSION" in out and "v2" in out and "finished" in out
    assert cli("alias", "set", "churn@v1", "production", store=filled).returncode == 0
    r = cli("promote", "churn@v2", "--metric", "loss", store=filled)
    assert r.returncode == 3 and "worse" in r.stderr  # refused by the guard: 3, not an error
    assert cli("promote", "churn@v2", "--force", store=filled).returncode == 0
    assert mt.resolve("churn@production", store=filled) == ("churn", 2)
    assert "v2 -> v1" in cli("rollback", "churn", store=filled).stdout
    hist = json.loads(cli("alias", "history", "churn", "--json", store=filled).stdout)
    assert [e["to"] for e in hist] == [1, 2, 1]
    assert cli("tag", "churn@v1", "dataset=v2", "reviewed", store=filled).stdout.strip() == "dataset=v2, reviewed"
    assert cli("notes", "churn@v1", "first release", store=filled).returncode == 0
    assert cli("notes", "churn@v1", store=filled).stdout.strip() == "first release"
    show = cli("show", "churn@production", store=filled).stdout
    assert ("churn@v1" in show and "production" in show and "▁" in show) or "█" in show
    assert "ok: 2 artifacts checked" in cli("verify", store=filled).stdout
    assert "models" in cli("--help").stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["show", "nope"], "no model 'nope'"),
        (["show", "churn@v9"], "no version 9"),
        (["show", "churn@staging"], "no alias 'staging'"),
        (["show", "bad/name"], "invalid model name"),
        (["alias", "set", "churn@v1", "latest"], "reserved"),
    ],
)
def test_errors_are_one_line_without_traceback(filled: str, args: list[str], message: str) -> None:
    r = cli(*args, store=filled)
    assert r.returncode == 1
    assert message in r.stderr and "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("modeltrack: error: ")


def test_store_that_is_newer_or_unknown_scheme(tmp_path: Path) -> None:
    r = cli("models", store="ftp://x/y")
    assert r.returncode == 1 and "unknown store scheme" in r.stderr
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "FORMAT").write_text('{"format": 7}')
    r = cli("models", store=str(tmp_path / "s"))
    assert r.returncode == 1 and "newer modeltrack" in r.stderr


def test_gc_cli(filled: str) -> None:
    r = cli("gc", "churn@v1", "--grace", "0", store=filled)
    assert r.returncode == 0 and "deleted 1 versions (churn@v1)" in r.stdout
    assert [v["version"] for v in mt.versions("churn", store=filled)] == [2]


def test_main_in_process_and_sparkline(filled: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--store", filled, "models"]) == 0
    assert "churn" in capsys.readouterr().out
    assert sparkline([0, 1, 2, 3]) == "▁▃▆█"
    assert sparkline([]) == ""
