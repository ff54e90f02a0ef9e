"""The UI's version page shows whether a version was reproduced, by which version, and the
result (and, on the re-run, which version it reproduces)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_ui import serve
from test_ui_browser import browser, goto, page, shot, wait_page  # noqa: F401 - fixtures

from modeltrack.repo import Repo
from modeltrack.ui.server import UIApp

SCRIPT = """
import modeltrack as mt
with mt.start("m", params={"lr": 0.1}) as v:
    for epoch in range(3):
        v.log_metrics({"loss": 1.0 / (epoch + 1)}, epoch=epoch)
"""


def _reproduced(tmp_path: Path, store: str) -> None:
    """m@v1 trained outside git, then reproduced as m@v2 (a match)."""
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "train.py").write_text(SCRIPT)
    env = {**os.environ, "MODELTRACK_STORE": store}
    out = subprocess.run([sys.executable, "train.py"], cwd=proj, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    res = subprocess.run(
        [sys.executable, "-m", "modeltrack", "reproduce", "m@v1", "--reuse-env"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr


def test_version_page_shows_the_reproduction(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    _reproduced(tmp_path, store)
    ui = UIApp(Repo(store))
    assert ui.version("m", 1)["reproduction"] == {
        "reproduces": None,
        "reproduced_by": [{"ref": "m@v2", "result": "match"}],
    }
    assert ui.version("m", 2)["reproduction"] == {
        "reproduces": {"ref": "m@v1", "result": "match"},
        "reproduced_by": [],
    }
    app = (Path(__file__).resolve().parents[1] / "modeltrack" / "ui" / "static" / "app.js").read_text()
    assert "reproductionCard(rec)" in app and "reproduced by " in app


@pytest.mark.browser
@pytest.mark.skipif(not os.path.exists("/usr/bin/chromium"), reason="browser tests need Debian's chromium")
def test_version_page_draws_the_reproduction_card(page: Any, tmp_path: Path) -> None:  # noqa: F811
    store = str(tmp_path / "store")
    _reproduced(tmp_path, store)
    with serve(store) as srv:
        goto(page, srv.url + "#/v/m/1", "version")
        card = page.inner_text("#reproduction")
        assert "reproduced by m@v2" in card and "match" in card
        shot(page, "reproduction")
        page.click("#reproduction a")
        wait_page(page, "version")
        assert "reproduces m@v1" in page.inner_text("#reproduction")
        assert page.url.endswith("#/v/m/2")
    assert page.problems == []
