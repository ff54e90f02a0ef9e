"""`modeltrack completion bash|zsh`: a script generated (by shtab) from the real parser."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

COMMANDS = ["models", "versions", "show", "diff", "promote", "rollback", "alias", "tag", "notes", "get", "gc"]


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_script_names_every_sub_command(shell: str) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "modeltrack", "completion", shell], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr
    for name in [*COMMANDS, "completion", "--store", "--metrics"]:
        assert name in r.stdout, name
    if shell == "zsh":
        assert r.stdout.startswith("#compdef modeltrack")
    elif shutil.which("bash"):
        check = subprocess.run(["bash", "-n"], input=r.stdout, capture_output=True, text=True, timeout=60)
        assert check.returncode == 0, check.stderr  # a script bash can load


def test_completion_of_an_unknown_shell_is_a_usage_error() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "modeltrack", "completion", "fish"], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 2 and "invalid choice: 'fish'" in r.stderr
