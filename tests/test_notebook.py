"""Notebooks and dataframes: versions and listings render as HTML tables; versions as a
pandas DataFrame with params and metrics as columns."""

from __future__ import annotations

import sys

import pytest

import modeltrack as mt
from modeltrack.errors import InvalidValueError, MissingDependencyError


def fill(store: str) -> None:
    for n, lr in enumerate((0.1, 0.2, 0.3)):
        with mt.start("m", store=store, params={"lr": lr, "opt": {"name": "adam"}}) as v:
            v.log_metrics({"loss": 1 - lr, "acc": lr}, epoch=0)
            v.set_tags(dataset="v2" if n else "v1", **({"reviewed": None} if n == 2 else {}))
    try:
        with mt.start("m", store=store, params={"lr": 9.0}):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    mt.promote("m@v2", "production", store=store)


def test_version_and_listings_render_as_escaped_html(store_uri: str) -> None:
    fill(store_uri)
    mt.set_notes("m@v1", "x", store=store_uri)
    mt.tag("m@v1", {"evil": "<img src=x onerror=alert(1)>"}, store=store_uri)
    rec = mt.show("m@v1", store=store_uri)
    assert isinstance(rec, dict) and rec["version"] == 1  # still the show --json dict
    page = rec._repr_html_()
    assert "<h4>m@v1</h4>" in page and "<table>" in page
    assert "<td>loss</td>" in page and "<td>lr</td>" in page and "<td>0.9</td>" in page
    assert "<img" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    listing = mt.versions("m", store=store_uri)
    assert listing == mt.Repo(store_uri).versions("m")  # a plain list of the same dicts
    page = listing._repr_html_()
    assert page.count("<tr>") == 5  # header + 4 versions
    assert "<th>loss</th>" in page and "<th>acc</th>" in page and "<td>failed</td>" in page
    assert "&lt;img" in page and "<img" not in page
    assert "<td>production</td>" in page
    assert "<td>m</td>" in mt.models(store=store_uri)._repr_html_()
    assert "<td>promote</td>" in mt.alias_history("m", store=store_uri)._repr_html_()


def test_versions_filters(store_uri: str) -> None:
    fill(store_uri)

    def nums(**kw: object) -> list[int]:
        return [v["version"] for v in mt.versions("m", store=store_uri, **kw)]  # type: ignore[arg-type]

    assert nums(tag="dataset=v2") == [2, 3]
    assert nums(tag=["dataset=v2", "reviewed"]) == [3]
    assert nums(tag={"dataset": "v1"}) == [1]
    assert nums(alias="production") == [2]
    assert nums(status="failed") == [4]
    assert nums(status=["finished", "failed"]) == [1, 2, 3, 4]
    with pytest.raises(InvalidValueError, match="unknown status 'done'; a version is one of running, finished"):
        nums(status="done")


def test_versions_as_a_dataframe(store_uri: str) -> None:
    pd = pytest.importorskip("pandas")
    fill(store_uri)
    df = mt.versions("m", store=store_uri, as_frame=True)
    assert isinstance(df, pd.DataFrame)
    assert list(df["version"]) == [1, 2, 3, 4]
    for col in ("status", "aliases", "tags.dataset", "params.lr", "metrics.loss", "metrics.acc"):
        assert col in df.columns, col
    assert list(df["params.lr"]) == [0.1, 0.2, 0.3, 9.0]
    assert df.loc[df["version"] == 2, "aliases"].item() == "production"
    finished = mt.versions("m", store=store_uri, as_frame=True, status="finished", tag="dataset=v2")
    assert list(finished["version"]) == [2, 3]
    assert finished["metrics.loss"].tolist() == pytest.approx([0.8, 0.7])


def test_dataframe_without_pandas_names_the_install(store_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fill(store_uri)
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now raises ImportError
    with pytest.raises(MissingDependencyError, match=r"needs pandas, which is not installed; `pip install pandas`"):
        mt.versions("m", store=store_uri, as_frame=True)
    assert len(mt.versions("m", store=store_uri)) == 4  # without as_frame nothing needs pandas


def test_import_modeltrack_does_not_import_pandas() -> None:
    import subprocess

    code = "import sys, modeltrack; print('pandas' in sys.modules, 'torch' in sys.modules, 'sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout
    assert out.split() == ["False", "False", "False"]
