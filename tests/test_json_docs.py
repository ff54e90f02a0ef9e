"""The CLI's ``--json`` output carries every key docs/json.md documents."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import modeltrack as mt

DOC = (Path(__file__).resolve().parent.parent / "docs" / "json.md").read_text()


def _documented(section: str) -> set[str]:
    """Top-level keys of the first code block after the heading that contains ``section``."""
    part = DOC.split(section, 1)[1].split("```", 2)[1]
    depth, keys, token = 0, set(), ""
    for ch in part:
        if ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
        token = token + ch if depth == 1 else ""
        if depth == 1:
            m = re.search(r'"([a-z_]+)"\??:$', token)
            if m:
                keys.add(m.group(1))
    return keys


def _cli(store: str, *args: str) -> object:
    out = subprocess.run(
        [sys.executable, "-m", "modeltrack", "--store", store, *args], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_cli_json_matches_the_documented_keys(store_uri: str, tmp_path: Path) -> None:
    f = tmp_path / "m.bin"
    f.write_bytes(b"1")
    for lr in (0.1, 0.2):
        with mt.start("m", store=store_uri, params={"lr": lr}) as v:
            v.log_metrics({"loss": lr}, epoch=0)
            v.log_artifact(f)
    mt.promote("m@v1", "production", store=store_uri)
    cases = {
        "## `modeltrack models --json`": _cli(store_uri, "models", "--json")[0],
        "## `modeltrack versions NAME --json`": _cli(store_uri, "versions", "m", "--json")[0],
        "## `modeltrack show REF --json`": _cli(store_uri, "show", "m", "--json"),
        "## `modeltrack diff A B --json`": _cli(store_uri, "diff", "m@v1", "m@v2", "--json"),
        "## `modeltrack alias history NAME --json`": _cli(store_uri, "alias", "history", "m", "--json")[0],
        "## `modeltrack verify --json`": _cli(store_uri, "verify", "--json"),
        "## `modeltrack evaluate REF": _cli(store_uri, "evaluate", "m@v1", "acc=0.5", "--name", "test", "--json"),
    }
    for section, got in cases.items():
        want = _documented(section)
        assert want, section
        missing = want - set(got)  # type: ignore[arg-type]
        assert not missing, (section, missing)
    assert os.path.exists(store_uri)
