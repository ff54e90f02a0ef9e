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


def test_latest_is_the_newest_version_whatever_its_status(filled: str) -> None:
    try:
        with mt.start("churn", store=filled) as v:
            v.log_metrics({"loss": 9.0}, epoch=0)
            raise RuntimeError("diverged")
    except RuntimeError:
        pass
    assert mt.resolve("churn", store=filled) == ("churn", 2)  # plain NAME: newest finished
    assert mt.resolve("churn@latest", store=filled) == ("churn", 3)
    out = cli("show", "churn@latest", store=filled).stdout
    assert out.startswith("churn@v3  failed") and "diverged" in out
    assert json.loads(cli("show", "churn@latest", "--json", store=filled).stdout)["status"] == "failed"
    # loading it by name: a clear error, since the failed run stored no model
    with pytest.raises(mt.ModelTrackError, match=r"churn@v3 has no model or checkpoint artifact"):
        mt.load("churn@latest", store=filled)
    # the newest finished one is still what NAME loads
    assert mt.load("churn", kind="path", store=filled).endswith("model.bin")


def test_show_and_diff_human_output_name_source_and_architecture(filled: str, tmp_path: Path) -> None:
    for layers in (["Linear 4x8"], ["Linear 4x8", "Linear 8x1"]):
        with mt.start("net", store=filled) as v:
            from modeltrack.capture.model import architecture

            v.set_framework("torch", **architecture(layers, params_total=len(layers)))
    out = cli("diff", "net@v1", "net@v2", store=filled).stdout
    assert "architecture: changed sha256:" in out and "+ Linear 8x1" in out
    dest = str(tmp_path / "copy")
    r = cli("push", "churn@v1", dest, store=filled)
    assert r.returncode == 0, r.stderr
    out = cli("show", "churn@v1", store=dest).stdout
    assert f"copied from churn@v1 in {filled}" in out
    md = cli("show", "churn@v1", "--md", store=dest).stdout
    assert md.startswith("### churn@v1") and "| source | copied from churn@v1" in md
    assert "| metric | last | best | goal | points |" in md and "| loss |" in md
    md = cli("diff", "churn@v1", "churn@v2", "--md", store=filled).stdout
    assert md.startswith("### churn@v1 → churn@v2")
    assert "| lr | 0.1 | 0.2 |" in md and "| metric | from | to | delta |" in md
    md = cli("diff", "net@v1", "net@v2", "--md", store=filled).stdout
    assert "| architecture | sha256:" in md


def test_md_cells_cannot_break_the_table(filled: str) -> None:
    mt.tag("churn@v1", {"note": "a|b <script>"}, store=filled)
    md = cli("show", "churn@v1", "--md", store=filled).stdout
    assert "note=a\\|b &lt;script>" in md and "<script>" not in md


def test_get_without_output_gives_a_copy_in_the_current_directory(filled: str, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()

    def get(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "modeltrack", "--store", filled, "get", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=work)

    r = get("churn@v1")
    assert r.returncode == 0, r.stderr
    path = (work / r.stdout.strip()).resolve()
    assert path == (work / "model.bin").resolve() and path.read_bytes() == b"w"
    with open(path, "ab") as f:  # the user's own copy: changing it damages nothing
        f.write(b"appended")
    assert "ok:" in cli("verify", store=filled).stdout
    assert mt.load("churn@v1", kind="path", store=filled) != str(path)
    r = get("churn@v1")  # a different file of that name is never overwritten
    assert r.returncode == 1 and "already exists here and is not this artifact; pass -o DIR" in r.stderr
    path.unlink()
    assert get("churn@v1").returncode == 0 and get("churn@v1").returncode == 0  # the same content: fine
    r = get("churn@v1", "-o", str(tmp_path / "out"))
    assert r.returncode == 0 and Path(r.stdout.strip()).read_bytes() == b"w"


def test_versions_metric_columns_and_filters(store_uri: str) -> None:
    metrics = {"train_accuracy": 0.9, "test_score": 0.8, "val_loss": 0.3, "best_cv_score": 0.7, "train_f1": 0.6}
    for n in range(2):
        with mt.start("m", store=store_uri) as v:
            v.log_metrics({k: x + n for k, x in metrics.items()}, epoch=0)
    mt.tag("m@v2", {"dataset": "v2"}, store=store_uri)
    header = cli("versions", "m", store=store_uri).stdout.splitlines()[0].split()
    assert set(metrics) <= set(header)  # every metric, by its full name
    out = cli("versions", "m", "--metrics", "test_score,val_loss", store=store_uri).stdout.splitlines()
    assert out[0].split()[-2:] == ["test_score", "val_loss"] and "train_f1" not in out[0]
    assert "1.8" in out[3]
    r = cli("versions", "m", "--metrics", "test_score,nosuch", store=store_uri)
    assert r.returncode == 1 and "no metric 'nosuch'; its metrics: train_accuracy" in r.stderr
    rows = json.loads(cli("versions", "m", "--tag", "dataset=v2", "--json", store=store_uri).stdout)
    assert [v["version"] for v in rows] == [2]
    assert json.loads(cli("versions", "m", "--status", "failed", "--json", store=store_uri).stdout) == []


def test_gc_dry_run_explains_the_grace_period(filled: str) -> None:
    out = cli("gc", "churn@v1", "--dry-run", store=filled).stdout
    assert "would delete 1 versions (churn@v1)" in out
    with mt.start("other", store=filled) as v:  # an orphan blob: written, then its version deleted
        f = Path(filled).parent / "orphan.bin"
        f.write_bytes(b"orphan")
        v.log_artifact(f)
    # a dry run reports what deleting the version would free, as the real run then does
    assert "would delete 1 versions (other@v1), 1 unreferenced blobs, 6 bytes" in (
        cli("gc", "other@v1", "--dry-run", "--grace", "0", store=filled).stdout
    )
    assert cli("gc", "other@v1", store=filled).returncode == 0
    out = cli("gc", "--dry-run", store=filled).stdout
    assert "0 bytes" in out and "kept 1 unreferenced blobs younger than the grace period of 3600 s" in out
    assert "`--grace 0` frees them now" in out
    out = cli("gc", "--dry-run", "--grace", "0", store=filled).stdout
    assert "1 unreferenced blobs, 6 bytes" in out and "kept" not in out
