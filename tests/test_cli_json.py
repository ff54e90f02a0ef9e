"""The --json results of the registry commands carry every key docs/json.md documents."""

from __future__ import annotations

import json
import subprocess
import sys

from test_json_docs import _documented  # the same reading of docs/json.md

import modeltrack as mt


def _run(store: str, *args: str, rc: int = 0) -> object:
    out = subprocess.run(
        [sys.executable, "-m", "modeltrack", "--store", store, *args], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == rc, out.stderr
    return json.loads(out.stdout)


def test_registry_json_results_match_the_documented_keys(store_uri: str) -> None:
    for loss in (0.3, 0.5):
        with mt.start("m", store=store_uri) as v:
            v.log_metrics({"val_loss": loss}, epoch=0)
    mt.tag("m@v1", reviewed=None, store=store_uri)
    mt.set_notes("m@v1", "first", store=store_uri)
    cases = {
        "## `modeltrack promote REF [ALIAS] --json`": [
            _run(store_uri, "promote", "m@v1", "--metric", "val_loss", "--json"),
            _run(store_uri, "promote", "m@v2", "--metric", "val_loss", "--json", rc=3),  # refused
        ],
        "## `modeltrack rollback NAME [ALIAS] --json`": [
            _run(store_uri, "alias", "set", "m@v2", "production", "--json"),
            _run(store_uri, "rollback", "m", "--json"),
            _run(store_uri, "alias", "rm", "m", "production", "--json"),
        ],
        "## `modeltrack tag REF --history --json`": _run(store_uri, "tag", "m@v1", "--history", "--json"),
        "## `modeltrack notes REF --json`": [_run(store_uri, "notes", "m@v1", "--json")],
        "## `modeltrack show REF --json`": [_run(store_uri, "show", "m@latest", "--json")],
    }
    for section, docs in cases.items():
        want = _documented(section)
        assert want, section
        assert docs, section
        for got in docs:  # type: ignore[attr-defined]
            missing = want - set(got)
            assert not missing, (section, missing)
