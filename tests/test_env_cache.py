"""The environment is captured once per process and reused until what it describes changes
(issue 13): packages, git state and code, with the command line and seeds read each time."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from modeltrack.capture import env

pytestmark = pytest.mark.skipif(subprocess.run(["git", "--version"], capture_output=True).returncode, reason="git")


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args], cwd=repo, check=True, capture_output=True
    )


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    _git(root, "init", "-q")
    (root / "train.py").write_text("print('hello')\n")
    _git(root, "add", "train.py")
    _git(root, "commit", "-q", "-m", "one")
    monkeypatch.chdir(root)
    monkeypatch.setattr(env, "_git_cache", {})
    monkeypatch.setattr(env, "_code_cache", {})
    return root


def _count_git(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    calls: list[list[str]] = []
    real = env._git

    def counting(args: list[str], cwd: str) -> str | None:
        calls.append(args)
        return real(args, cwd)

    monkeypatch.setattr(env, "_git", counting)
    return calls


def _tick() -> None:
    time.sleep(0.02)  # past the file system's timestamp granularity


def test_git_state_is_reused_until_it_changes(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, diff = env.collect()
    assert first["git"]["dirty"] is False and diff is None
    calls = _count_git(monkeypatch)
    for _ in range(5):
        again, diff = env.collect()
        assert again["git"] == first["git"] and diff is None
    assert calls == []  # nothing changed: no git process at all

    _tick()
    (repo / "train.py").write_text("print('changed')\n")  # an edit, the index untouched
    edited, diff = env.collect()
    assert edited["git"]["dirty"] is True
    assert diff is not None and "+print('changed')" in diff
    assert calls  # looked again

    _tick()
    _git(repo, "commit", "-q", "-am", "two")
    committed, diff = env.collect()
    assert committed["git"]["commit"] != first["git"]["commit"]
    assert committed["git"]["dirty"] is False and diff is None

    _tick()
    _git(repo, "checkout", "-q", "-b", "feature")
    assert env.collect()[0]["git"]["branch"] == "feature"


def test_a_repository_appearing_is_seen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(env, "_git_cache", {})
    monkeypatch.setattr(sys, "argv", ["-c"])
    plain = tmp_path / "plain"
    plain.mkdir()
    monkeypatch.chdir(plain)
    assert env.collect()[0]["git"] is None
    calls = _count_git(monkeypatch)
    assert env.collect()[0]["git"] is None
    assert calls == []
    _tick()
    _git(plain, "init", "-q")
    (plain / "a.py").write_text("x = 1\n")
    _git(plain, "add", "a.py")
    _git(plain, "commit", "-q", "-m", "one")
    assert env.collect()[0]["git"]["commit"]


def test_packages_rescanned_when_installed_set_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    before = env.packages()
    assert "modeltrack-fake-dist" not in before
    _tick()
    info = site / "modeltrack_fake_dist-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: modeltrack-fake-dist\nVersion: 1.2.3\n")
    os.utime(site)  # as installing does
    assert env.packages()["modeltrack-fake-dist"] == "1.2.3"


def test_per_version_parts_are_fresh(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "orig_argv", ["python", "train.py", "--lr", "0.1"], raising=False)
    a, _ = env.collect(randomness={"python": 1})
    monkeypatch.setattr(sys, "orig_argv", ["python", "train.py", "--lr", "0.2"], raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    b, _ = env.collect(randomness={"python": 2})
    assert a["command"][-1] == "0.1" and b["command"][-1] == "0.2"
    assert a["randomness"] == {"python": 1} and b["randomness"] == {"python": 2}
    assert b["env"]["OMP_NUM_THREADS"] == "3"
    b["packages"]["x"] = "mutated"  # a record is a copy: the cache is not shared with it
    assert "x" not in env.collect()[0]["packages"]


def test_package_scan_agrees_with_importlib_metadata() -> None:
    """The scan reads each distribution's metadata header itself (the e-mail parser that
    importlib.metadata uses cost ~0.5 s here): the result is the same as its answers."""
    from importlib import metadata

    scanned = env._scan_packages()
    want: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            want.setdefault(name.lower().replace("_", "-"), dist.version)
    assert scanned["packages"] == dict(sorted(want.items()))
    owners = {
        mod: sorted({d.lower().replace("_", "-") for d in dists})
        for mod, dists in metadata.packages_distributions().items()
    }
    assert scanned["owners"] == owners
    assert {"numpy", "modeltrack"} <= set(scanned["packages"]) and "numpy" in scanned["owners"]["numpy"]
    assert scanned["sources"]["modeltrack"]["kind"] == "editable"
