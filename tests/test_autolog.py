"""``modeltrack.autolog()``: every integration, any import order, reversible; the post-import
hook; ``MODELTRACK_AUTOLOG=1`` at interpreter start-up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import modeltrack as mt
from modeltrack import autologging


@pytest.fixture(autouse=True)
def _clean() -> Any:
    yield
    mt.autolog(disable=True)
    assert not autologging.import_hooks(), "import hooks leaked out of a test"


def _python(code: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=300,
        check=False,
    )


# ---------------------------------------------------------------------- the post-import hook
def _fake_package(tmp_path: Path, name: str) -> Path:
    pkg = tmp_path / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text("VALUE = 1\n")
    (pkg / "sub.py").write_text("class Thing:\n    pass\n")
    return pkg


def test_hook_runs_after_the_module_body(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"fakefw_{os.getpid()}_a"
    _fake_package(tmp_path, name)
    monkeypatch.syspath_prepend(str(tmp_path))
    seen: list[Any] = []
    assert autologging.when_imported([name], "test", lambda m: seen.append((m.__name__, m.VALUE))) == []
    assert seen == []
    module = __import__(name)
    assert seen == [(name, 1)]
    # The module keeps its real loader (importlib.resources and friends ask it).
    assert type(module.__loader__).__name__ != "_ChainedLoader"
    assert type(module.__spec__.loader).__name__ != "_ChainedLoader"
    autologging.cancel_import_hook("test")
    assert not any(type(f).__name__ == "_PostImportFinder" for f in sys.meta_path)
    sys.modules.pop(name, None)


def test_prefix_hook_sees_submodules_and_already_imported_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"fakefw_{os.getpid()}_b"
    _fake_package(tmp_path, name)
    monkeypatch.syspath_prepend(str(tmp_path))
    __import__(name)
    seen: list[str] = []
    now = autologging.when_imported([name + "."], "test", lambda m: seen.append(m.__name__), prefix=True)
    assert now == [] and seen == []
    __import__(name + ".sub")
    assert seen == [name + ".sub"]
    # Registering again when the module is loaded: called at once.
    seen.clear()
    assert autologging.when_imported([name + "."], "test", lambda m: seen.append(m.__name__), prefix=True) == [
        name + ".sub"
    ]
    autologging.cancel_import_hook("test")
    for mod in (name, name + ".sub"):
        sys.modules.pop(mod, None)


def test_failing_hook_does_not_break_the_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELTRACK_STRICT", "0")
    name = f"fakefw_{os.getpid()}_c"
    _fake_package(tmp_path, name)
    monkeypatch.syspath_prepend(str(tmp_path))

    def broken(module: Any) -> None:
        raise RuntimeError("hook broke")

    autologging.when_imported([name], "test", broken)
    with pytest.warns(mt.ModelTrackWarning, match="hook broke"):
        module = __import__(name)
    assert module.VALUE == 1
    autologging.cancel_import_hook("test")
    sys.modules.pop(name, None)


# ---------------------------------------------------------------------- the dispatcher
def test_autolog_arms_without_importing_frameworks() -> None:
    out = _python("""
        import sys, json
        import modeltrack as mt
        on = mt.autolog(model="m")
        heavy = [m for m in ("sklearn", "torch", "keras", "lightning", "pytorch_lightning") if m in sys.modules]
        print(json.dumps({"on": on, "heavy": heavy}))
    """)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res["heavy"] == []
    assert "modeltrack.integrations.sklearn" in res["on"]


@pytest.mark.slow
@pytest.mark.parametrize("order", ["autolog_first", "import_first"])
def test_any_import_order_records_fits(order: str, store_uri: str) -> None:
    first, second = ("mt.autolog(model='order')", "from sklearn.linear_model import LogisticRegression")
    if order == "import_first":
        first, second = second, first
    out = _python(
        f"""
        import json, numpy as np
        import modeltrack as mt
        {first}
        {second}
        from sklearn.linear_model import LogisticRegression
        original = LogisticRegression.__dict__["fit"].__modeltrack_original__
        X = np.random.default_rng(0).normal(size=(30, 2)); y = (X[:, 0] > 0).astype(int)
        LogisticRegression().fit(X, y)
        mt.autolog(disable=True)
        restored = LogisticRegression.__dict__["fit"] is original
        print(json.dumps({{"versions": [v["status"] for v in mt.versions("order")], "restored": restored}}))
    """,
        env={"MODELTRACK_STORE": store_uri},
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"versions": ["finished"], "restored": True}


@pytest.mark.slow
def test_disable_and_reenable_never_double_patch() -> None:
    pytest.importorskip("sklearn")
    from sklearn.linear_model import LogisticRegression

    original = LogisticRegression.__dict__["fit"]
    mt.autolog()
    mt.autolog()
    patched = LogisticRegression.__dict__["fit"]
    assert patched.__modeltrack_original__ is original
    mt.autolog(disable=True)
    assert LogisticRegression.__dict__["fit"] is original
    mt.autolog()
    assert LogisticRegression.__dict__["fit"].__modeltrack_original__ is original
    mt.autolog(disable=True)
    assert LogisticRegression.__dict__["fit"] is original


def test_missing_integration_module_is_skipped(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    name = f"fakefw_{os.getpid()}_d"
    _fake_package(tmp_path, name)
    monkeypatch.syspath_prepend(str(tmp_path))
    registered = autologging.integrations_by_trigger()
    monkeypatch.setattr(
        autologging,
        "integrations_by_trigger",
        lambda: {**registered, "modeltrack.integrations.nothing_here": (name,)},
    )
    assert "modeltrack.integrations.nothing_here" in mt.autolog()
    __import__(name)  # the hook fires, finds no integration module, and says nothing
    sys.modules.pop(name, None)


# ---------------------------------------------------------------------- MODELTRACK_AUTOLOG
def test_autolog_from_env_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(autologging, "_from_env_done", False)
    monkeypatch.setenv("MODELTRACK_AUTOLOG", "maybe")
    with pytest.warns(UserWarning, match="MODELTRACK_AUTOLOG"):
        autologging.autolog_from_env()
    autologging.autolog_from_env()  # once per process


def test_pth_line_is_the_shipped_file() -> None:
    pth = Path(autologging.__file__).parent / "_boot" / "modeltrack_autolog.pth"
    assert pth.read_text().strip() == autologging.PTH_LINE


@pytest.mark.slow
def test_env_var_switches_autolog_on_at_startup(tmp_path: Path, store_uri: str) -> None:
    """Needs the installed ``modeltrack_autolog.pth`` (``pip install -e .`` puts it there)."""
    import site

    if not any((Path(p) / "modeltrack_autolog.pth").exists() for p in site.getsitepackages()):
        pytest.skip("modeltrack_autolog.pth is not installed in this environment; reinstall with pip install -e .")
    script = tmp_path / "plain_train.py"
    script.write_text(
        textwrap.dedent("""
        import numpy as np
        from sklearn.linear_model import LinearRegression
        X = np.arange(20.0).reshape(10, 2); y = X @ [1.0, 2.0]
        LinearRegression().fit(X, y)
    """)
    )
    out = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "MODELTRACK_AUTOLOG": "1", "MODELTRACK_STORE": store_uri},
        check=False,
    )
    assert out.returncode == 0, out.stderr
    rec = mt.show("plain_train", store=store_uri)
    assert rec["status"] == "finished" and rec["metrics"]["train_r2"]["last"] == pytest.approx(1.0)
    # Without the variable nothing is recorded and modeltrack is not even imported.
    out = _python("import sys; print('modeltrack' in sys.modules)", env={"MODELTRACK_AUTOLOG": "0"})
    assert out.stdout.strip() == "False"


@pytest.mark.slow
def test_framework_options_reach_only_their_integration(store_uri: str) -> None:
    """Shared options go to every integration; a framework's own options go only to it."""
    out = _python(
        """
        import json, numpy as np
        import modeltrack as mt
        import lightning.pytorch
        from sklearn.linear_model import LogisticRegression
        mt.autolog(model="opts", sklearn={"log_models": False}, lightning={"checkpoints": "all"})
        X = np.random.default_rng(0).normal(size=(30, 2)); y = (X[:, 0] > 0).astype(int)
        LogisticRegression().fit(X, y)
        mt.autolog(disable=True)
        rec = mt.show("opts")
        print(json.dumps({"kinds": [a["kind"] for a in rec["artifacts"]], "model": rec["model"]}))
        """,
        env={"MODELTRACK_STORE": store_uri},
    )
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["model"] == "opts" and "model" not in res["kinds"]


@pytest.mark.parametrize("module", ["sklearn", "keras", "lightning"])
def test_every_integration_refuses_an_unknown_option_the_same_way(module: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    integration = pytest.importorskip(f"modeltrack.integrations.{module}")
    with pytest.raises(mt.ModelTrackError, match=f"{module} autolog.*unexpected option.*nosuch"):
        integration.autolog(nosuch=1)
    with pytest.raises(TypeError):  # an InvalidOptionError is a TypeError too
        integration.autolog(nosuch=1)


def test_global_autolog_refuses_unknown_shared_options() -> None:
    with pytest.raises(mt.ModelTrackError, match="unexpected option.*checkpoints"):
        mt.autolog(checkpoints="all")  # a Lightning option belongs under lightning={...}
    with pytest.raises(mt.ModelTrackError, match="takes a dict"):
        mt.autolog(lightning="all")
