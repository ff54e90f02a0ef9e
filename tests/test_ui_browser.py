"""The web UI in a real headless Chromium (Debian's ``chromium``, driven by Playwright).

Each test starts the UI server on a free loopback port over a store filled by real (tiny)
numpy training runs, browses it, and saves screenshots under ``test-output/ui/``.
Set ``UPDATE_DOCS=1`` to also refresh ``docs/compare.png`` (the README's screenshot).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_ui import XSS_NOTE, XSS_PARAM, XSS_TAG, filled_store, serve, train  # noqa: F401 - fixture

import modeltrack as mt

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "test-output" / "ui"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM),
        reason=f"browser tests need Debian's chromium at {CHROMIUM} (apt-get install chromium)",
    ),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page; JS errors, console errors (CSP violations too) and native dialogs are
    collected in ``page.problems`` and must stay empty."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    pg = ctx.new_page()
    problems: list[str] = []
    pg.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    http_errors: list[str] = []

    def on_console(m: Any) -> None:
        if m.type != "error":
            return
        # the browser logs every 4xx answer; tests that expect some look at page.http_errors
        (http_errors if m.text.startswith("Failed to load resource") else problems).append(f"console: {m.text}")

    pg.on("console", on_console)

    def on_dialog(d: Any) -> None:
        problems.append(f"native dialog: {d.message}")
        d.dismiss()

    pg.on("dialog", on_dialog)
    pg.problems = problems
    pg.http_errors = http_errors
    yield pg
    ctx.close()


def goto(page: Any, url: str, name: str) -> float:
    """Open ``url`` and wait until the app has drawn page ``name``; returns its render time (ms)."""
    if page.url.split("#")[0] == url.split("#")[0]:
        page.evaluate("document.body.dataset.ready = '0'")
    page.goto(url)
    return wait_page(page, name)


def wait_page(page: Any, name: str, timeout: float = 20_000) -> float:
    page.wait_for_selector(f"body[data-ready='1'][data-page='{name}']", state="attached", timeout=timeout)
    return float(page.evaluate("document.body.dataset.renderMs"))


def shot(page: Any, name: str) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def confirm(page: Any, ok: bool = True) -> None:
    page.wait_for_selector("dialog[open] #confirm-ok")
    page.click("#confirm-ok" if ok else "#confirm-cancel")


def points(page: Any, chart: str) -> int:
    return int(page.get_attribute(f"figure[data-chart='{chart}']", "data-points") or 0)


def lines(page: Any, chart: str) -> int:
    return int(page.get_attribute(f"figure[data-chart='{chart}']", "data-series") or 0)


@pytest.fixture(scope="module")
def served(filled_store: str) -> Iterator[str]:  # noqa: F811 - the imported fixture
    with serve(filled_store) as srv:
        yield srv.url


# ---------------------------------------------------------------------- browsing
def test_browse_every_page(page: Any, served: str, filled_store: str) -> None:  # noqa: F811
    goto(page, served + "#/", "models")
    rows = page.locator("#models-table tbody tr")
    assert rows.count() == 2
    churn = page.locator("#models-table tr[data-model='churn']")
    assert churn.locator("td").nth(1).inner_text() == "4"
    assert "production → v2" in churn.inner_text() and "v4" in churn.inner_text()
    page.fill("#model-search", "fra")
    assert rows.count() == 1 and "fraud" in rows.first.inner_text()
    page.fill("#model-search", "production")
    assert rows.count() == 1 and "churn" in rows.first.inner_text()
    page.fill("#model-search", "")
    shot(page, "models")

    page.click("#models-table a.model-link:text-is('churn')")
    wait_page(page, "versions")
    vrows = page.locator("#versions-table .tbody .tr")
    assert vrows.count() == 4
    assert vrows.first.get_attribute("data-version") == "4"  # newest first
    failed = page.locator("#versions-table .tr[data-version='3']")
    assert "failed" in failed.inner_text() and "row-failed" in (failed.get_attribute("class") or "")
    assert "production" in page.locator("#versions-table .tr[data-version='2']").inner_text()
    header = page.locator("#versions-table .th", has_text="val_loss")
    header.click()
    col = [h.strip(" ↕↑↓") for h in page.locator("#versions-table .thead .th").all_inner_texts()].index("val_loss")
    cells = page.locator(f"#versions-table .tbody .tr .td:nth-child({col + 1})")

    def column_once_rendered() -> list[float]:
        # A click re-renders the table; read it once all four cells hold numbers again.
        deadline = time.monotonic() + 5
        while True:
            texts = [t.strip() for t in cells.all_text_contents()]
            if (len(texts) == 4 and all(texts)) or time.monotonic() > deadline:
                return [float(t) for t in texts]
            time.sleep(0.05)

    vals = column_once_rendered()
    assert vals == sorted(vals)
    header.click()
    page.wait_for_function(
        "(col) => { const c = [...document.querySelectorAll(`#versions-table .tbody .tr .td:nth-child(${col})`)]"
        ".map(e => parseFloat(e.textContent)); return c.length === 4 && c.every((v, i) => i === 0 || c[i - 1] >= v); }",
        arg=col + 1,
        timeout=5000,
    )
    vals = column_once_rendered()
    assert vals == sorted(vals, reverse=True)
    page.select_option("#status-filter", "failed")
    assert vrows.count() == 1 and vrows.first.get_attribute("data-version") == "3"
    page.select_option("#status-filter", "")
    page.fill("#version-filter", "dataset=v1")
    assert vrows.count() == 1 and vrows.first.get_attribute("data-version") == "1"
    page.fill("#version-filter", "")
    assert vrows.count() == 4
    shot(page, "versions")

    # compare two versions picked with the checkboxes
    assert page.is_disabled("#compare-btn")
    page.check("input.pick[data-version='1']")
    page.check("input.pick[data-version='2']")
    page.click("#compare-btn")
    wait_page(page, "compare")
    assert "refs=churn%40v1,churn%40v2" in page.url
    lr = page.locator("#compare-params tr[data-param='lr']")
    assert "differs" in (lr.get_attribute("class") or "")
    assert lr.locator("td.changed").inner_text() == "0.2"
    assert "same" in (page.locator("#compare-params tr[data-param='epochs']").get_attribute("class") or "")
    page.check("#only-diff")
    assert not page.locator("#compare-params tr[data-param='epochs']").is_visible()
    assert page.locator("#compare-params tr[data-param='lr']").is_visible()
    repo = mt.Repo(filled_store)
    v1, v2 = repo.version("churn@v1")["metrics"]["val_loss"], repo.version("churn@v2")["metrics"]["val_loss"]
    cells = page.locator("#compare-metrics tr[data-metric='val_loss'] td")
    better = 0 if v1["last"] < v2["last"] else 1
    assert "best" in (cells.nth(better).get_attribute("class") or "") and "★" in cells.nth(better).inner_text()
    assert "best" not in (cells.nth(1 - better).get_attribute("class") or "")
    assert lines(page, "val_loss") == 2 and points(page, "val_loss") == 12
    assert "churn@v2 vs churn@v1" in page.inner_text("#compare-summary")
    assert "Data fingerprints" in (page.text_content("#compare-changes") or "")
    shot(page, "compare")

    # one version: params, charts with train and val together, environment, data, artifacts
    goto(page, served + "#/v/churn/2", "version")
    assert page.inner_text("#version-status") == "finished"
    assert "0.2" in page.locator("#params-table tr", has_text="lr").inner_text()
    assert lines(page, "loss") == 2 and points(page, "loss") == 12  # train_loss + val_loss, 6 epochs each
    legend = page.locator("figure[data-chart='loss'] .chart-legend").inner_text()
    assert "train_loss" in legend and "val_loss" in legend
    assert "Python" in page.inner_text("section:has(h2:text-is('Environment'))")
    assert page.locator("#data-table tbody tr").count() == 2
    assert "lr" in page.inner_text("#changelog")
    assert page.locator("#alias-history tbody tr").count() == 2
    page.locator("figure[data-chart='loss'] .u-over").hover(position={"x": 200, "y": 100})
    assert page.is_visible("figure[data-chart='loss'] .chart-tip")
    link = page.locator("#artifacts-table a.download")
    with page.expect_download() as dl:
        link.click()
    data = Path(dl.value.path()).read_bytes()
    assert hashlib.sha256(data).hexdigest() == repo.version("churn@v2", series=False)["artifacts"][0]["sha256"]
    shot(page, "version")

    goto(page, served + "#/v/churn/3", "version")
    assert page.inner_text("#version-status") == "failed"
    assert "RuntimeError: loss diverged" in page.inner_text("#error-trace")
    shot(page, "version-failed")

    assert page.http_errors == []
    goto(page, served + "#/v/churn/99", "error")
    assert "no version 99" in page.inner_text("#error-text")
    assert page.problems == [] and all("404" in e for e in page.http_errors)


def test_user_text_is_escaped(page: Any, served: str) -> None:
    for url, name in [
        ("#/v/churn/1", "version"),
        ("#/m/churn", "versions"),
        ("#/compare?refs=churn@v1,churn@v2", "compare"),
        ("#/", "models"),
    ]:
        goto(page, served + url, name)
        assert page.evaluate("window.__xss") is None, url
        assert page.locator("main img, main script").count() == 0, url
    goto(page, served + "#/v/churn/1", "version")
    assert page.inner_text("#notes-text") == XSS_NOTE
    assert page.input_value("#notes-input") == XSS_NOTE
    assert XSS_TAG + "=x" in page.inner_text("#tag-chips")
    assert XSS_PARAM in page.locator("#params-table tr", has_text="comment").inner_text()
    assert page.evaluate("window.__xss") is None
    shot(page, "xss")
    assert page.problems == []


# ---------------------------------------------------------------------- actions
def test_promote_rollback_tags_notes_through_the_ui(page: Any, tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    for lr in (0.05, 0.2, 0.5):
        train(store, lr=lr, epochs=3)
    repo = mt.Repo(store)
    with serve(store) as srv:
        goto(page, srv.url + "#/v/churn/1", "version")
        page.fill("#alias-input", "production")
        page.click("#promote-btn")
        confirm(page, ok=False)
        assert repo.aliases("churn") == {}
        page.click("#promote-btn")
        assert "is new" in page.inner_text("dialog[open]")
        confirm(page)
        page.wait_for_selector(".banner.ok:text('production → v1')")
        assert repo.aliases("churn") == {"production": 1}

        goto(page, srv.url + "#/v/churn/2", "version")
        page.fill("#alias-input", "production")
        page.click("#promote-btn")
        assert "now points at v1" in page.inner_text("dialog[open]")
        confirm(page)
        page.wait_for_selector(".banner.ok:text('production → v2')")
        assert repo.aliases("churn") == {"production": 2}
        shot(page, "promoted")

        page.click("#rollback-production")
        assert "point back at v1" in page.inner_text("dialog[open]")
        confirm(page)
        page.wait_for_selector(".banner.ok:text('rolled back')")
        assert repo.aliases("churn") == {"production": 1}
        history = repo.alias_history("churn", "production")
        assert [(e["action"], e["from"], e["to"]) for e in history] == [
            ("promote", None, 1),
            ("promote", 1, 2),
            ("rollback", 2, 1),
        ]
        assert "rollback" in page.inner_text("#alias-history")
        shot(page, "rolled-back")

        page.fill("#tag-input", "stage=candidate")
        page.click("#tag-btn")
        confirm(page)
        page.wait_for_selector("#tag-chips:has-text('stage=candidate')")
        assert repo.tags("churn", 2) == {"stage": "candidate"}
        page.click("button[data-tag='stage']")
        confirm(page)
        page.wait_for_selector("#tag-chips:has-text('no tags')")
        assert repo.tags("churn", 2) == {}

        page.fill("#notes-input", "Better recall on the March data.\nSecond line.")
        page.click("#notes-btn")
        confirm(page)
        page.wait_for_selector("#notes-text:has-text('Second line.')")
        assert repo.notes("churn", 2) == "Better recall on the March data.\nSecond line."
        shot(page, "actions")
    assert page.problems == []


def test_ui_asks_for_the_token(page: Any, tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    train(store, epochs=2)
    repo = mt.Repo(store)
    with serve(store, token="letmein") as srv:
        goto(page, srv.url + "#/v/churn/1", "version")
        page.click("#promote-btn")
        confirm(page)
        page.wait_for_selector("dialog[open] #token-input")
        page.click("dialog[open] button:text-is('Cancel')")
        page.wait_for_selector(".banner.error")
        assert "failed" in page.inner_text("#banner") and repo.aliases("churn") == {}
        page.click("#promote-btn")
        confirm(page)
        page.fill("#token-input", "wrong")
        page.click("#token-ok")
        page.wait_for_selector("dialog[open] h3:text('Wrong token')")
        assert repo.aliases("churn") == {}
        page.fill("#token-input", "letmein")
        page.click("#token-ok")
        page.wait_for_selector(".banner.ok:text('production → v1')")
        assert repo.aliases("churn") == {"production": 1}
    assert page.problems == []


# ---------------------------------------------------------------------- live updates
def test_running_version_updates_without_reload(page: Any, tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    v = mt.start("live", params={"lr": 0.1}, store=store)
    try:
        for e in range(3):
            v.log_metrics({"train_loss": 1.0 / (e + 1), "val_loss": 1.2 / (e + 1)}, step=e, epoch=e)
        v.flush()
        with serve(store, poll=0.3) as srv:
            goto(page, srv.url + "#/v/live/1", "version")
            assert page.inner_text("#version-status") == "running"
            assert points(page, "loss") == 6
            page.evaluate("window.__marker = 'same page'")
            for e in range(3, 8):
                v.log_metrics({"train_loss": 1.0 / (e + 1), "val_loss": 1.2 / (e + 1)}, step=e, epoch=e)
            v.flush()
            deadline = time.monotonic() + 15
            while points(page, "loss") != 16 and time.monotonic() < deadline:  # polled by the page, not reloaded
                page.wait_for_timeout(100)
            assert points(page, "loss") == 16
            assert page.evaluate("window.__marker") == "same page"  # no reload
            row = page.locator("#metrics-table tr", has_text="val_loss").inner_text().split("\t")
            assert row[1:3] == ["0.15", "0.15"] and row[-1] == "8"  # last, best, points follow the run
            shot(page, "live-running")
            v.finish()
            page.wait_for_selector("#version-status:text-is('finished')", timeout=15_000)
            assert page.evaluate("window.__marker") == "same page"
            shot(page, "live-finished")
    finally:
        if v.status == "running":
            v.finish()
    assert page.problems == []


# ---------------------------------------------------------------------- README screenshot
def test_compare_screenshot_for_readme(page: Any, tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    train(store, lr=0.02, epochs=15, tags={"dataset": "march"})
    train(store, lr=0.1, epochs=15, tags={"dataset": "march"})
    train(
        store,
        lr=0.3,
        epochs=15,
        seed=7,
        tags={"dataset": "april"},
        extra={"optimizer": {"name": "sgd", "nesterov": True}},
    )
    mt.Repo(store).set_alias("churn@v2", "production")
    with serve(store) as srv:
        goto(page, srv.url + "#/compare?refs=churn@v1,churn@v2,churn@v3", "compare")
        page.set_viewport_size({"width": 1280, "height": 800})
        page.evaluate("window.dispatchEvent(new Event('resize'))")
        page.wait_for_timeout(300)
        OUT.mkdir(parents=True, exist_ok=True)
        path = OUT / "compare-readme.png"
        page.screenshot(path=str(path), clip={"x": 0, "y": 0, "width": 1280, "height": 1250}, full_page=True)
        if os.environ.get("UPDATE_DOCS") == "1":
            (ROOT / "docs").mkdir(exist_ok=True)
            (ROOT / "docs" / "compare.png").write_bytes(path.read_bytes())
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert page.problems == []


# ---------------------------------------------------------------------- performance
@pytest.mark.slow
def test_render_times_on_real_sizes(page: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """1,000 versions on the versions page; 10 versions × 10,000 points on one chart.

    The times are printed and written to test-output/ui/perf.json, not asserted.
    """
    store = str(tmp_path / "store")
    monkeypatch.chdir(tmp_path)  # outside a git checkout: no git calls per version, a quicker fill
    t = time.perf_counter()
    for i in range(1000):
        with mt.start(
            "big", params={"lr": 0.001 * (i + 1), "batch": 32}, store=store, tags={"sweep": "a"} if i % 3 else None
        ) as v:
            v.log_metrics(
                {"train_loss": 1.0 / (i + 1), "val_loss": 1.1 / (i + 1), "val_acc": i / 1000}, step=0, epoch=0
            )
    fill_big = time.perf_counter() - t
    repo = mt.Repo(store)
    repo.set_alias("big@v500", "production")
    t = time.perf_counter()
    for k in range(10):
        with mt.start("curves", params={"lr": 0.01 * (k + 1)}, store=store) as v:
            for s in range(10_000):
                v.log_metrics(
                    {"loss": (1.0 + k / 10) / (1 + s / 500) + 0.01 * ((s * 7919) % 13) / 13}, step=s, epoch=s // 1000
                )
    fill_curves = time.perf_counter() - t
    t = time.perf_counter()
    assert len(repo.versions("big")) == 1000
    list_s = time.perf_counter() - t

    refs = ",".join(f"curves@v{k}" for k in range(1, 11))
    with serve(store) as srv:
        goto(page, srv.url + "#/", "models")
        results: dict[str, Any] = {
            "repo_versions_1000_s": round(list_s, 3),
            "fill_1000_versions_s": round(fill_big, 1),
            "fill_10x10000_points_s": round(fill_curves, 1),
        }
        for run in ("cold", "warm"):
            results[f"versions_page_1000_ms_{run}"] = goto(page, srv.url + "#/m/big", "versions")
            assert page.locator("#versions-table .tbody .tr").count() == 1000
            goto(page, srv.url + "#/", "models")
        shot(page, "perf-models")
        goto(page, srv.url + "#/m/big", "versions")
        page.click("#versions-table .th[data-key='m:val_loss']")
        shot(page, "perf-versions")
        for run in ("cold", "warm"):
            results[f"compare_10x10000_downsampled_ms_{run}"] = goto(
                page, srv.url + f"#/compare?refs={refs}", "compare"
            )
            results["compare_downsampled_points_drawn"] = points(page, "loss")
            results["compare_downsampled_draw_ms"] = float(
                page.get_attribute("figure[data-chart='loss']", "data-draw-ms")
            )
            goto(page, srv.url + "#/", "models")
        results["compare_10x10000_all_points_ms"] = goto(page, srv.url + f"#/compare?refs={refs}&points=0", "compare")
        results["compare_all_points_drawn"] = points(page, "loss")
        results["compare_all_points_draw_ms"] = float(page.get_attribute("figure[data-chart='loss']", "data-draw-ms"))
        assert results["compare_all_points_drawn"] == 100_000
        assert lines(page, "loss") == 10
        shot(page, "perf-compare")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "perf.json").write_text(json.dumps(results, indent=2))
    print("\nUI render times:\n" + json.dumps(results, indent=2))
    assert page.problems == []
