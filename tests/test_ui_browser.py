"""The web UI in a real headless Chromium (Debian's ``chromium``, driven by Playwright).

Each test starts the UI server on a free loopback port over a store filled by real (tiny)
numpy training runs, browses it, and saves screenshots under ``test-output/ui/``.
Set ``UPDATE_DOCS=1`` to also refresh ``docs/ui-compare*.png`` (the README's screenshots).
"""

from __future__ import annotations

import hashlib
import json
import math
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
    col = [h.strip(" \u00a0↕↑↓") for h in page.locator("#versions-table .thead .th").all_inner_texts()].index(
        "val_loss"
    )
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


# ---------------------------------------------------------------------- charts, wide tables, actors
#: metric names of the "curves" model, in the order they are logged
CURVE_METRICS = [
    "loss",
    "delta",
    "test_f1_score_macro",
    "best_checkpoint_val_loss",
    "train_loss_epoch",
    "train_loss_step",
]


def long_checkpointing(k: int) -> str:
    """A 2,000-character parameter value (the kind that used to make a column 840 px wide)."""
    unit = f"ModelCheckpoint(dirpath=/scratch/run{k}/ckpt,monitor=val_loss,save_top_k=3,every_n_epochs=1);"
    return (unit * (2000 // len(unit) + 1))[:2000]


def curve_values(k: int) -> dict[str, list[float]]:
    steps = range(200)
    return {
        "loss": [(1 + k) / (1 + s / 20) + 0.05 * ((s * 7919) % 13) / 13 for s in steps],
        "delta": [math.sin(s / 10) * (k + 1) for s in steps],
        "test_f1_score_macro": [0.5 + 0.002 * s for s in steps],
        "best_checkpoint_val_loss": [1 / (1 + s) for s in steps],
        "train_loss_epoch": [2 / (1 + s) for s in steps],
        "train_loss_step": [3 / (1 + s) for s in steps],
    }


@pytest.fixture(scope="module")
def curves_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """curves v1..v3: 200 steps (4 epochs) of six metrics, one of them negative at times, and a
    2,000-character ``trainer.checkpointing``; trained by alice@trainer, changed by bob@laptop."""
    store = str(tmp_path_factory.mktemp("curves") / "store")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MODELTRACK_ACTOR", "alice@trainer")
        for k in range(3):
            params = {"lr": 0.1 * (k + 1), "trainer": {"checkpointing": long_checkpointing(k), "precision": 16}}
            with mt.start("curves", params=params, store=store) as v:
                values = curve_values(k)
                for s in range(200):
                    v.log_metrics({name: values[name][s] for name in CURVE_METRICS}, step=s, epoch=s // 50)
        mp.setenv("MODELTRACK_ACTOR", "bob@laptop")
        repo = mt.Repo(store)
        repo.set_alias("curves@v1", "production")
        repo.set_alias("curves@v2", "production")
        repo.set_tags("curves@v2", {"stage": "candidate"})
        repo.set_notes("curves@v2", "reviewed")
    return store


@pytest.fixture(scope="module")
def curves(curves_store: str) -> Iterator[str]:
    with serve(curves_store) as srv:
        yield srv.url


def js_fmt(v: float) -> str:
    """MTChart.fmt for values between 1e-3 and 1e6: four significant digits, no trailing zeros."""
    assert 1e-3 <= abs(v) < 1e6
    return repr(float(f"{v:.4g}")).removesuffix(".0")


def ema(values: list[float], w: float) -> list[float]:
    """The smoothing of charts.js (TensorBoard's debiased EMA), in the same float operations."""
    out, last, wn = [], 0.0, 1.0
    for v in values:
        last = last * w + (1 - w) * v
        wn *= w
        out.append(last / (1 - wn))
    return out


def chart_range(page: Any, chart: str) -> tuple[float, float]:
    fig = page.locator(f"figure[data-chart='{chart}']")
    return float(fig.get_attribute("data-x-min") or "nan"), float(fig.get_attribute("data-x-max") or "nan")


def x_pixel(page: Any, chart: str, x: float) -> tuple[float, float]:
    """Where on the page step ``x`` of ``chart`` is (the middle of the plot's height)."""
    over = page.locator(f"figure[data-chart='{chart}'] .u-over")
    over.scroll_into_view_if_needed()
    box = over.bounding_box()
    lo, hi = chart_range(page, chart)
    return box["x"] + (x - lo) / (hi - lo) * box["width"], box["y"] + box["height"] / 2


def hover_text(page: Any, chart: str, x: float) -> str:
    page.mouse.move(*x_pixel(page, chart, x))
    tip = page.locator(f"figure[data-chart='{chart}'] .chart-tip")
    tip.wait_for(state="visible")
    return tip.inner_text()


def test_charts_zoom_and_hover_readout(page: Any, curves: str) -> None:
    goto(page, curves + "#/compare?refs=curves@v1,curves@v2,curves@v3", "compare")
    assert lines(page, "loss") == 3 and points(page, "loss") == 600
    assert chart_range(page, "loss") == (0, 199)
    fig = page.locator("figure[data-chart='loss']")
    assert fig.get_attribute("data-zoomed") == "0"

    # hover: the step, its epoch, and every version's value there
    text = hover_text(page, "loss", 100)
    head, *rows = text.splitlines()
    assert head == "step 100 · epoch 2"
    assert rows == [f"v{k + 1}: {js_fmt(curve_values(k)['loss'][100])}" for k in range(3)]

    # drag from step 50 to step 100: the chart shows that range only
    page.mouse.move(*x_pixel(page, "loss", 50))
    page.mouse.down()
    x1, y1 = x_pixel(page, "loss", 100)
    page.mouse.move(x1, y1, steps=8)
    page.mouse.up()
    page.wait_for_selector("figure[data-chart='loss'][data-zoomed='1']")
    lo, hi = chart_range(page, "loss")
    assert 47 <= lo <= 53 and 97 <= hi <= 103, (lo, hi)
    assert hover_text(page, "loss", 75).splitlines()[0] == "step 75 · epoch 1"  # readout in the zoomed range
    shot(page, "chart-zoomed")

    # double-click: back to every step
    page.mouse.dblclick(*x_pixel(page, "loss", 75))
    page.wait_for_selector("figure[data-chart='loss'][data-zoomed='0']")
    assert chart_range(page, "loss") == (0, 199)

    # the legend hides a line (and the readout leaves it out)
    fig.locator(".legend-item", has_text="v2").click()
    assert lines(page, "loss") == 2 and points(page, "loss") == 400
    assert "v2:" not in hover_text(page, "loss", 100)
    assert page.problems == []


def test_log_scale_and_smoothing(page: Any, curves: str) -> None:
    url = curves + "#/compare?refs=curves@v1,curves@v2,curves@v3"
    goto(page, url, "compare")
    assert page.locator("figure[data-chart='delta']").get_attribute("data-log") == "0"
    assert points(page, "delta") == 600
    page.check("#log-scale")
    page.wait_for_selector("figure[data-chart='delta'][data-log='1']")
    # a log axis cannot show values <= 0: they are left out, the rest is drawn
    positive = sum(1 for k in range(3) for v in curve_values(k)["delta"] if v > 0)
    assert points(page, "delta") == positive < 600
    assert page.locator("figure[data-chart='loss']").get_attribute("data-log") == "1" and points(page, "loss") == 600
    shot(page, "chart-log")
    page.evaluate("document.body.dataset.ready = '0'")
    page.reload()  # the choice is remembered
    wait_page(page, "compare")
    assert page.is_checked("#log-scale")
    assert page.locator("figure[data-chart='loss']").get_attribute("data-log") == "1"
    page.uncheck("#log-scale")
    page.wait_for_selector("figure[data-chart='loss'][data-log='0']")

    # smoothing: each line becomes its moving average; the readout gives both values
    page.evaluate(
        "() => { const s = document.getElementById('smoothing'); s.value = '0.9';"
        " s.dispatchEvent(new Event('input', {bubbles: true})); }"
    )
    page.wait_for_selector("figure[data-chart='loss'][data-smoothing='0.9']")
    assert page.inner_text("#smoothing-value") == "0.90"
    assert lines(page, "loss") == 3 and points(page, "loss") == 600
    rows = hover_text(page, "loss", 100).splitlines()[1:]
    want = [
        f"v{k + 1}: {js_fmt(ema(curve_values(k)['loss'], 0.9)[100])} (raw {js_fmt(curve_values(k)['loss'][100])})"
        for k in range(3)
    ]
    assert rows == want
    shot(page, "chart-smoothed")
    page.evaluate(
        "() => { const s = document.getElementById('smoothing'); s.value = '0';"
        " s.dispatchEvent(new Event('input', {bubbles: true})); }"
    )
    page.wait_for_selector("figure[data-chart='loss'][data-smoothing='0']")
    assert hover_text(page, "loss", 100).splitlines()[1] == f"v1: {js_fmt(curve_values(0)['loss'][100])}"
    assert page.problems == []


def right_edges(page: Any, selector: str) -> list[float]:
    return page.evaluate(
        "(sel) => [...document.querySelectorAll(sel)].map((e) => e.getBoundingClientRect().right)", selector
    )


def test_compare_keeps_every_version_on_screen_at_1280(page: Any, curves: str) -> None:
    page.set_viewport_size({"width": 1280, "height": 900})
    goto(page, curves + "#/compare?refs=curves@v1,curves@v2,curves@v3", "compare")
    for table in ("compare-metrics", "compare-params", "compare-changes"):
        edges = right_edges(page, f"#{table} thead th.vcol")
        assert len(edges) == 3 and max(edges) <= 1280, (table, edges)
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    row = page.locator("#compare-params tr[data-param='trainer.checkpointing']")
    cells = row.locator("td")
    for k in range(3):
        value = cells.nth(k).locator(".value")
        assert value.get_attribute("title") == long_checkpointing(k)  # the full text on hover
        assert "clipped" in (value.get_attribute("class") or "")
        box = cells.nth(k).bounding_box()
        assert box["x"] + box["width"] <= 1280 and box["height"] < 200  # clipped to a few lines
    expand = cells.nth(2).locator("button.expand")
    assert expand.inner_text() == "show all 2,000 characters"
    expand.click()
    assert cells.nth(2).locator(".value").inner_text() == long_checkpointing(2)
    assert "clipped" not in (cells.nth(2).locator(".value").get_attribute("class") or "")
    assert max(right_edges(page, "#compare-params thead th.vcol, #compare-params td")) <= 1280
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    expand.click()
    assert expand.inner_text() == "show all 2,000 characters"
    # one version's page wraps and clips the same value, in its params and its changelog
    goto(page, curves + "#/v/curves/2", "version")
    value = page.locator("#params-table tr", has_text="trainer.checkpointing").locator(".value")
    assert value.get_attribute("title") == long_checkpointing(1)
    change = page.locator("#changelog li", has_text="trainer.checkpointing").locator(".value")
    assert change.get_attribute("title") == f"{long_checkpointing(0)} → {long_checkpointing(1)}"
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    shot(page, "version-long-value")
    assert page.problems == []


def header_cells(page: Any) -> list[dict[str, Any]]:
    return page.evaluate(
        "() => [...document.querySelectorAll('#versions-table .thead .th')].map((e) => ({text: e.textContent,"
        " title: e.getAttribute('title'), cut: e.scrollWidth > e.clientWidth + 1, width: e.clientWidth}))"
    )


def test_versions_headers_are_full_names_and_metric_columns_can_be_chosen(
    page: Any, curves: str, curves_store: str
) -> None:
    page.set_viewport_size({"width": 1280, "height": 900})
    goto(page, curves + "#/m/curves", "versions")
    heads = header_cells(page)
    logged = list(mt.Repo(curves_store).versions("curves")[0]["metrics"])
    assert sorted(logged) == sorted(CURVE_METRICS)
    assert [h["text"] for h in heads] == [
        "",
        "Version",
        "Status",
        "Label",
        "Created",
        "Duration",
        "Aliases",
        "Tags",
        *logged,
    ]
    for head in heads:
        assert not head["cut"], head
        if head["text"]:
            assert head["title"] == head["text"]
    assert page.inner_text("#metric-picker-count") == f"Metric columns: {len(logged)} of {len(logged)}"
    shot(page, "versions-headers")

    # ?metrics=a,b: those columns, in that order
    goto(page, curves + "#/m/curves?metrics=train_loss_step,loss", "versions")
    assert [h["text"] for h in header_cells(page)][8:] == ["train_loss_step", "loss"]
    row = page.locator("#versions-table .tr[data-version='2'] .td")
    assert row.nth(8).inner_text() == js_fmt(curve_values(1)["train_loss_step"][-1])
    # the picker: unticking a metric drops its column and keeps the choice in the address
    page.click("#metric-picker summary")
    page.uncheck("#metric-picker input[data-metric='train_loss_step']")
    assert [h["text"] for h in header_cells(page)][8:] == ["loss"], page.problems
    assert page.url.endswith("#/m/curves?metrics=loss")
    page.check("#metric-picker input[data-metric='delta']")
    assert [h["text"] for h in header_cells(page)][8:] == ["loss", "delta"]
    # a metric no version has is named, with those that exist
    goto(page, curves + "#/m/curves?metrics=nosuch,loss", "versions")
    assert "no version has metric nosuch" in page.inner_text("#unknown-metrics")
    assert page.problems == []


def test_actor_is_shown_in_histories_and_on_the_version(
    page: Any, curves: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    goto(page, curves + "#/v/curves/2", "version")
    assert page.inner_text("#version-actor") == "alice@trainer"
    history = page.locator("#alias-history")
    assert [t.strip() for t in history.locator("tbody tr td:nth-child(7)").all_inner_texts()] == ["bob@laptop"] * 2
    assert "By" in history.locator("thead").inner_text()
    tags = page.inner_text("#tag-history")
    assert "+ stage=candidate" in tags and "bob@laptop" in tags
    assert "bob@laptop" in page.inner_text("#notes-by")
    shot(page, "actors")
    goto(page, curves + "#/compare?refs=curves@v1,curves@v2", "compare")
    assert page.locator(".vcard .actor").all_inner_texts() == ["by alice@trainer"] * 2

    # a change made in the UI names whoever runs the server
    store = str(tmp_path / "store")
    train(store, epochs=2)
    monkeypatch.setenv("MODELTRACK_ACTOR", "carol@ui")
    with serve(store) as srv:
        goto(page, srv.url + "#/v/churn/1", "version")
        page.fill("#alias-input", "staging")
        page.click("#promote-btn")
        confirm(page)
        page.wait_for_selector(".banner.ok:text('staging → v1')")
        assert "carol@ui" in page.inner_text("#alias-history"), page.inner_text("#banner")
    assert mt.Repo(store).alias_history("churn")[-1]["actor"] == "carol@ui"
    assert page.problems == []


# ---------------------------------------------------------------------- README screenshot
def test_compare_screenshot_for_readme(page: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's screenshots of the compare page at 1280 px (``UPDATE_DOCS=1`` writes them to
    ``docs/ui-compare.png`` and ``docs/ui-compare-params.png``); every version stays in view."""
    store = str(tmp_path / "store")
    monkeypatch.setenv("MODELTRACK_ACTOR", "ana@train-box")  # not whoever runs the tests
    ckpt = {"trainer": {"checkpointing": long_checkpointing(0)}}
    train(store, lr=0.02, epochs=15, tags={"dataset": "march"}, extra=ckpt)
    train(store, lr=0.1, epochs=15, tags={"dataset": "march"}, extra=ckpt)
    train(
        store,
        lr=0.3,
        epochs=15,
        seed=7,
        tags={"dataset": "april"},
        extra={"optimizer": {"name": "sgd", "nesterov": True}, "trainer": {"checkpointing": long_checkpointing(2)}},
    )
    mt.Repo(store).set_alias("churn@v2", "production")
    page.set_viewport_size({"width": 1280, "height": 800})
    with serve(store) as srv:
        goto(page, srv.url + "#/compare?refs=churn@v1,churn@v2,churn@v3", "compare")
        # the store's path is this test's temporary folder: not something to show in the README
        page.evaluate("document.getElementById('store').style.visibility = 'hidden'")
        page.mouse.move(*x_pixel(page, "val_loss", 9))  # show the hover readout
        page.evaluate("window.scrollTo(0, 0)")
        for table in ("compare-metrics", "compare-params", "compare-changes"):
            assert max(right_edges(page, f"#{table} thead th.vcol")) <= 1280, table
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280
        OUT.mkdir(parents=True, exist_ok=True)
        top, params = OUT / "ui-compare.png", OUT / "ui-compare-params.png"
        page.screenshot(path=str(top), clip={"x": 0, "y": 0, "width": 1280, "height": 1100}, full_page=True)
        page.locator("section.card:has(#compare-params)").screenshot(path=str(params))
        for path in (top, params):
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert str(tmp_path) not in page.inner_text("body")  # no temporary path on the page
            if os.environ.get("UPDATE_DOCS") == "1":
                (ROOT / "docs").mkdir(exist_ok=True)
                (ROOT / "docs" / path.name).write_bytes(path.read_bytes())
    assert page.problems == []


# ---------------------------------------------------------------------- performance
@pytest.mark.slow
def test_render_times_on_real_sizes(page: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """1,000 versions on the versions page; 10 versions × 10,000 points on one chart.

    The times are printed and written to test-output/ui/perf.json; each page must be drawn
    within 0.5 s.
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
    # from the hash change to the page drawn (data fetched, tables built, charts painted)
    for key in (
        "versions_page_1000_ms_cold",
        "versions_page_1000_ms_warm",
        "compare_10x10000_downsampled_ms_cold",
        "compare_10x10000_downsampled_ms_warm",
        "compare_10x10000_all_points_ms",
    ):
        assert results[key] < 500, (key, results[key])
    assert page.problems == []


def test_a_dataset_of_arrays_shows_each_arrays_shape(page: Any, tmp_path: Path) -> None:
    import numpy as np

    store = str(tmp_path / "store")
    with mt.start("shapes", store=store) as v:
        v.log_data("train", (np.zeros((48, 4)), np.zeros((48, 1))))
        v.log_data("labels", np.zeros(7))
    with serve(store) as srv:
        goto(page, srv.url + "#/v/shapes/1", "version")
        text = page.inner_text("main")
    assert "48 × 4 + 48 × 1" in text and "7" in text
    assert page.problems == []
