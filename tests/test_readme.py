"""The README's commands are the ones CI runs, and its examples exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    commands = re.findall(r"```bash\n(.+?)\n```", readme)
    test_cmd = next(c for c in commands if "pytest" in c)
    assert test_cmd in ci.splitlines()
    assert "-c constraints.txt" in test_cmd
    main_cmd = next(c for c in commands if "examples/" in c)
    script = re.search(r"(examples/\S+\.py)", main_cmd)
    assert script and (ROOT / script.group(1)).exists()
    assert "torch==2.13.0" in (ROOT / "constraints.txt").read_text()
