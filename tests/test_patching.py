"""The autolog machinery of :mod:`modeltrack.patching`, on small fake classes (no framework)."""

from __future__ import annotations

import threading
import types
import warnings
from collections.abc import Callable
from typing import Any

import pytest

from modeltrack import patching
from modeltrack.errors import ModelTrackWarning
from modeltrack.patching import ClassPatcher, Outermost, Patcher, ScopeHandle, Scopes, ThreadDepth


# ---------------------------------------------------------------------- fakes
class _OnlyWhenReady:
    """A descriptor like sklearn's ``available_if``: absent unless ``obj.ready``."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        if not obj.ready:
            raise AttributeError("not ready")
        return types.MethodType(self.fn, obj)


def _make_classes() -> dict[str, type]:
    class _Hidden:
        def fit(self, x: int) -> Any:
            self.log.append(("hidden.fit", x))
            return self

    class Base:
        ready = True

        def __init__(self) -> None:
            self.log: list[Any] = []

        def fit(self, x: int) -> Any:
            self.log.append(("base.fit", x))
            return self

        def predict(self, x: int) -> int:
            return x * 2

        @staticmethod
        def score(x: int) -> int:
            return x

    class Child(Base):
        def fit(self, x: int) -> Any:
            self.log.append(("child.fit", x))
            return super().fit(x)

    class FromHidden(_Hidden, Base):
        pass

    class Maybe(Base):
        def _proba(self, x: int) -> float:
            return x / 2

        predict = _OnlyWhenReady(_proba)  # type: ignore[assignment]

    return {"Base": Base, "Child": Child, "FromHidden": FromHidden, "Maybe": Maybe, "_Hidden": _Hidden}


def _own(cls: type) -> dict[str, Any]:
    return dict(vars(cls))


class _Recorder:
    """``around`` functions that record (name, obj) and call through."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def around(self, name: str) -> Callable[..., Any]:
        def around(original: Callable[..., Any], obj: Any, *args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, obj))
            return original(obj, *args, **kwargs)

        return around


def _patcher_for(rec: _Recorder, **kw: Any) -> ClassPatcher:
    return ClassPatcher({n: rec.around(n) for n in ("fit", "predict", "score")}, **kw)


# ---------------------------------------------------------------------- ClassPatcher
def test_class_patches_are_undone_exactly() -> None:
    classes = _make_classes()
    before = {name: _own(cls) for name, cls in classes.items()}
    rec = _Recorder()
    cp = _patcher_for(rec)
    p = Patcher()
    cp.start(p)
    for cls in classes.values():
        cp.patch_class(cls)
    base, child = classes["Base"], classes["Child"]
    assert base.__dict__["fit"] is not before["Base"]["fit"]
    assert patching.original(base.__dict__["fit"]) is before["Base"]["fit"]
    assert base.__dict__["fit"].__name__ == "fit"  # functools.wraps
    assert base.__dict__["score"] is before["Base"]["score"]  # a staticmethod is left alone
    assert "fit" not in vars(classes["FromHidden"])  # inherited and not asked for
    assert child().fit(3).log == [("child.fit", 3), ("base.fit", 3)]
    assert [n for n, _ in rec.calls] == ["fit", "fit"]
    p.undo()
    cp.stop()
    for name, cls in classes.items():
        assert _own(cls) == before[name], name
    assert "fit" not in vars(classes["FromHidden"])


def test_inherited_and_forced_methods_are_patched_on_the_class_and_removed_after() -> None:
    classes = _make_classes()
    rec = _Recorder()
    cp = _patcher_for(rec, inherited=lambda cls, name, owner: owner.__name__.startswith("_"))
    p = Patcher()
    cp.start(p)
    from_hidden, child = classes["FromHidden"], classes["Child"]
    cp.patch_class(from_hidden)
    assert patching.original(vars(from_hidden)["fit"]) is vars(classes["_Hidden"])["fit"]
    assert "predict" not in vars(from_hidden)  # Base is public: not by the rule
    cp.patch_class(child, force=True)
    assert patching.original(vars(child)["predict"]) is vars(classes["Base"])["predict"]
    p.undo()
    assert "fit" not in vars(from_hidden)
    assert "predict" not in vars(child)
    assert from_hidden().fit(1).log == [("hidden.fit", 1)]


def test_descriptor_methods_keep_raising_attribute_error() -> None:
    maybe = _make_classes()["Maybe"]
    rec = _Recorder()
    cp = _patcher_for(rec)
    p = Patcher()
    cp.start(p)
    cp.patch_class(maybe)
    assert isinstance(vars(maybe)["predict"], patching.WrappedDescriptor)
    obj = maybe()
    assert obj.predict(4) == 2.0
    assert rec.calls == [("predict", obj)]
    obj.ready = False
    assert not hasattr(obj, "predict")
    p.undo()
    assert isinstance(vars(maybe)["predict"], _OnlyWhenReady)


def test_never_patches_twice_nor_over_someone_elses_patch() -> None:
    classes = _make_classes()
    base = classes["Base"]
    original_fit = vars(base)["fit"]
    rec = _Recorder()
    cp = _patcher_for(rec)
    p = Patcher()
    cp.start(p)
    cp.patch_class(base)
    wrapped = vars(base)["fit"]
    cp.patch_class(base)  # again, same installation
    assert vars(base)["fit"] is wrapped
    other = _patcher_for(_Recorder())  # a second patcher sees our wrapper: leaves it
    p2 = Patcher()
    other.start(p2)
    other.patch_class(base)
    assert vars(base)["fit"] is wrapped and not p2
    p.undo()
    cp.stop()
    assert vars(base)["fit"] is original_fit

    # planned, then changed by someone else before being applied: left alone
    targets = cp.targets(base)
    theirs = lambda self, x: self  # noqa: E731
    base.fit = theirs  # type: ignore[method-assign]
    p3 = Patcher()
    cp.start(p3)
    assert [cp.apply(t) for t in targets if t[1] == "fit"] == [False]
    assert vars(base)["fit"] is theirs


def test_reinstalling_reuses_wrappers_and_inactive_patcher_does_nothing() -> None:
    base = _make_classes()["Base"]
    cp = _patcher_for(_Recorder())
    cp.patch_class(base)  # not started
    assert not hasattr(vars(base)["fit"], "__modeltrack_original__")
    first = Patcher()
    cp.start(first)
    cp.patch_class(base)
    wrapper = vars(base)["fit"]
    first.undo()
    cp.stop()
    second = Patcher()
    cp.start(second)
    cp.patch_class(base)
    assert vars(base)["fit"] is wrapper
    second.undo()


def test_patch_module_selects_public_classes_defined_there() -> None:
    classes = _make_classes()
    mod = types.ModuleType("fakefw.models")
    for name, cls in classes.items():
        cls.__module__ = mod.__name__
        setattr(mod, name, cls)

    class Elsewhere:
        def fit(self) -> None: ...

    mod.Elsewhere = Elsewhere  # type: ignore[attr-defined]
    mod.plain = lambda: None  # type: ignore[attr-defined]
    seen: list[str] = []

    def select(cls: type) -> bool:
        seen.append(cls.__name__)
        return cls.__name__ != "Maybe"

    cp = _patcher_for(_Recorder())
    p = Patcher()
    cp.start(p)
    cp.patch_module(mod, select)
    assert sorted(seen) == ["Base", "Child", "FromHidden", "Maybe"]  # not _Hidden, not Elsewhere
    assert hasattr(vars(classes["Base"])["fit"], "__modeltrack_original__")
    assert not hasattr(vars(classes["Maybe"])["predict"], "__modeltrack_original__")
    assert not hasattr(vars(Elsewhere)["fit"], "__modeltrack_original__")
    p.undo()
    cp.stop()
    cp.start(Patcher())
    cp.patch_module(mod, select)
    assert len(seen) == 4  # the selection was cached for this module object
    assert hasattr(vars(classes["Base"])["fit"], "__modeltrack_original__")


def test_patch_function_wraps_once_and_undoes() -> None:
    mod = types.ModuleType("fakefw.metrics")

    def accuracy(a: int, b: int) -> float:
        return float(a == b)

    mod.accuracy = accuracy  # type: ignore[attr-defined]
    calls: list[tuple[Any, ...]] = []

    def around(original: Callable[..., Any], *args: Any) -> Any:
        calls.append(args)
        return original(*args)

    cp = ClassPatcher({})
    p = Patcher()
    cp.start(p)
    assert cp.patch_function(mod, "accuracy", around)
    assert not cp.patch_function(mod, "accuracy", around)
    assert mod.accuracy(1, 1) == 1.0 and calls == [(1, 1)]
    assert patching.original(mod.accuracy) is accuracy
    p.undo()
    assert mod.accuracy is accuracy


def test_enable_twice_never_double_patches() -> None:
    base = _make_classes()["Base"]
    original_fit = vars(base)["fit"]
    cp = _patcher_for(_Recorder())

    def install(p: Patcher) -> None:
        cp.start(p)
        cp.patch_class(base)

    try:
        patching.enable("test-fake", install)
        patching.enable("test-fake", install)
        assert patching.original(vars(base)["fit"]) is original_fit
    finally:
        patching.disable("test-fake")
        cp.stop()
    assert vars(base)["fit"] is original_fit


# ---------------------------------------------------------------------- outermost only
def test_outermost_records_only_the_outer_call_of_nested_methods() -> None:
    child = _make_classes()["Child"]
    guard = Outermost()
    recorded: list[Any] = []

    def around(original: Callable[..., Any], obj: Any, *args: Any, **kwargs: Any) -> Any:
        if guard.busy or not guard.claim():
            return original(obj, *args, **kwargs)
        try:
            recorded.append(type(obj).__name__)
            return original(obj, *args, **kwargs)
        finally:
            guard.release()

    cp = ClassPatcher({"fit": around})
    p = Patcher()
    cp.start(p)
    for cls in child.__mro__[:2]:
        cp.patch_class(cls)
    try:
        est = child().fit(1)
        assert est.log == [("child.fit", 1), ("base.fit", 1)]
        assert recorded == ["Child"]
        child().fit(2)
        assert recorded == ["Child", "Child"]
    finally:
        p.undo()


def test_outermost_claim_is_process_wide() -> None:
    guard = Outermost()
    assert guard.claim()
    assert guard.owner == threading.get_ident()
    assert not guard.claim()
    got: list[bool] = []
    t = threading.Thread(target=lambda: got.append(guard.claim()))
    t.start()
    t.join()
    assert got == [False]  # another thread (an n_jobs worker) does not claim it
    guard.release()
    assert not guard.busy and guard.owner is None
    t = threading.Thread(target=lambda: got.append(guard.claim()))
    t.start()
    t.join()
    assert got == [False, True]


def test_thread_depth_is_per_thread() -> None:
    depth = ThreadDepth()
    seen: list[tuple[bool, int]] = []
    inside = threading.Event()
    checked = threading.Event()

    def other() -> None:
        inside.wait(5)
        seen.append((depth.active, depth.level))
        with depth:
            seen.append((depth.active, depth.level))
        checked.set()

    t = threading.Thread(target=other)
    t.start()
    with depth:
        with depth:
            assert depth.level == 2
            inside.set()
            checked.wait(5)
        assert depth.level == 1
    t.join()
    assert not depth.active and depth.level == 0
    assert seen == [(False, 0), (True, 1)]


def test_in_worker_process(monkeypatch: pytest.MonkeyPatch) -> None:
    import multiprocessing

    assert not patching.in_worker_process()
    monkeypatch.setattr(multiprocessing, "current_process", lambda: types.SimpleNamespace(name="LokyProcess-1"))
    assert patching.in_worker_process()


# ---------------------------------------------------------------------- scopes
class _Events:
    def __init__(self) -> None:
        self.log: list[tuple[str, Any]] = []
        self.fail_finish = False

    def scopes(self) -> Scopes[str]:
        def finish(s: str) -> None:
            self.log.append(("finish", s))
            if self.fail_finish:
                raise RuntimeError("cannot finish")

        return Scopes(
            install=lambda s: self.log.append(("install", s)),
            finish=finish,
            idle=lambda: self.log.append(("idle", None)),
            what="the fake versions",
        )


def test_nested_blocks_innermost_wins_then_global() -> None:
    ev = _Events()
    scopes = ev.scopes()
    assert scopes.active() is None and scopes.idle
    assert scopes.set_global("g") is None
    assert scopes.active() == "g"
    with scopes.block("outer"):
        assert scopes.active() == "outer"
        with scopes.block("inner"):
            assert scopes.active() == "inner"
            assert scopes.all() == ["g", "outer", "inner"]
        assert scopes.active() == "outer"
    assert scopes.active() == "g"
    assert ("finish", "inner") in ev.log and ("finish", "outer") in ev.log
    assert ("idle", None) not in ev.log  # the global scope is still on
    scopes.clear_global()
    assert scopes.idle and ev.log[-2:] == [("finish", "g"), ("idle", None)]


def test_scopes_are_shared_by_threads() -> None:
    scopes = _Events().scopes()
    seen: list[str | None] = []
    with scopes.block("b"):
        t = threading.Thread(target=lambda: seen.append(scopes.active()))
        t.start()
        t.join()
    assert seen == ["b"]


def test_block_failures() -> None:
    ev = _Events()
    scopes = ev.scopes()
    ev.fail_finish = True
    with pytest.raises(ValueError, match="user"), warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        with scopes.block("b"):
            raise ValueError("user")
    assert any(issubclass(w.category, ModelTrackWarning) and "the fake versions" in str(w.message) for w in got)
    assert scopes.idle and ev.log[-1] == ("idle", None)

    def bad_install(s: str) -> None:
        raise OSError("no")

    broken: Scopes[str] = Scopes(install=bad_install, finish=lambda s: None, idle=lambda: None)
    with pytest.raises(OSError):
        with broken.block("x"):
            pass  # pragma: no cover
    assert broken.idle


def test_set_global_replaces_and_restore_global_gives_back() -> None:
    ev = _Events()
    scopes = ev.scopes()
    assert scopes.set_global("a") is None
    previous = scopes.set_global("b")
    assert previous == "a" and ("finish", "a") in ev.log
    scopes.restore_global("b", previous)
    assert scopes.global_scope == "a" and ev.log[-1] == ("install", "a")
    scopes.restore_global("b", None)  # "b" is not in force any more: nothing changes
    assert scopes.global_scope == "a"


def test_scope_handle_as_decorator_and_block() -> None:
    ev = _Events()
    scopes = ev.scopes()
    made = iter(["call-1", "call-2", "block"])

    def new() -> str:
        return next(made)

    handle = ScopeHandle(scopes, scopes.set_global("g"), "g", new)

    @handle
    def train() -> str | None:
        return scopes.active()

    assert scopes.global_scope is None  # decorating gave the global switch back
    assert train() == "call-1" and train() == "call-2"
    with ScopeHandle(scopes, scopes.set_global("g2"), "g2", new):
        assert scopes.active() == "block"
    assert scopes.idle and ev.log[-1] == ("idle", None)


# ---------------------------------------------------------------------- recognising objects
class _Obj:
    pass


def test_identity_map_hits_only_the_very_object() -> None:
    m: patching.IdentityMap[str] = patching.IdentityMap()
    a, b = _Obj(), _Obj()
    assert m.put(a, "a")
    assert m.get(a) == "a" and m.get(b) is None
    assert m.first([b, 1, a]) == "a"
    assert not m.put([1, 2], "list")  # not weakly referenceable: not kept
    assert len(m) == 1
    m._items[id(b)] = m._items.pop(id(a))  # as if b were a new object reusing a's id
    assert m.get(b) is None
    strong: patching.IdentityMap[str] = patching.IdentityMap(strong=True)
    items = [1, 2]
    assert strong.put(items, "kept") and strong.get(items) == "kept"
    strong.discard(lambda v: v == "kept")
    assert strong.get(items) is None


def test_identity_map_bound_drops_stale_then_oldest() -> None:
    closed: set[str] = set()
    m: patching.IdentityMap[str] = patching.IdentityMap(max_size=2, stale=lambda v: v in closed)
    objs = [_Obj() for _ in range(4)]
    m.put(objs[0], "0")
    m.put(objs[1], "1")
    closed.add("1")
    assert m.get(objs[1]) is None  # stale values are not hits
    m.put(objs[2], "2")  # full: the stale one goes
    assert m.get(objs[0]) == "0" and len(m) == 2
    m.put(objs[3], "3")  # full, nothing stale: the oldest goes
    assert m.get(objs[0]) is None and m.get(objs[2]) == "2" and m.get(objs[3]) == "3"


_FRAMEWORK_FILE = "/fake/framework/core.py"
_framework: dict[str, Any] = {"patching": patching, "FILE": _FRAMEWORK_FILE}
exec(  # a "framework" function whose frames live in another file
    compile(
        "def predict(X):\n    inner = X\n    return patching.caller_variable(inner, lambda f: f == FILE)\n",
        _FRAMEWORK_FILE,
        "exec",
    ),
    _framework,
)
X_module = _Obj()


def test_caller_variable_walks_past_skipped_frames() -> None:
    X_test = _Obj()
    assert _framework["predict"](X_test) == "X_test"  # the framework's own locals are skipped
    assert _framework["predict"](X_module) == "X_module"  # then the user's globals
    nameless = _framework["predict"](_Obj())  # outside an assert: pytest's temporaries are locals
    assert nameless is None
    assert patching.caller_variable(X_test, lambda f: False) == "X_test"  # nothing skipped: this frame


def test_failure_watch_reports_step_errors_lets_loop_control_through_and_restores() -> None:
    import gc

    from modeltrack.patching import FailureWatch

    class Model:
        def step(self, x: int) -> int:
            if x < 0:
                raise ValueError("negative")
            if x == 0:
                raise StopIteration
            return x * 2

    seen: list[object] = []
    model = Model()
    watch = FailureWatch(seen.append, ignore=lambda exc: isinstance(exc, StopIteration))
    watch.wrap(model, "step")
    watch.wrap(model, "step")  # watching twice wraps once
    assert model.step(2) == 4 and seen == []
    with pytest.raises(StopIteration):
        model.step(0)
    assert seen == []
    with pytest.raises(ValueError, match="negative"):  # the user's exception, unchanged
        model.step(-1)
    assert len(seen) == 1 and isinstance(seen[0], ValueError)

    class Loop:
        pass

    loop = Loop()
    watch.when_dropped(loop, lambda: "loop ended early")
    del loop
    gc.collect()
    assert seen[-1] == "loop ended early"
    watch.stop()
    assert "step" not in vars(model)  # the class's method shows through again

    def broken(failure: object) -> None:
        raise RuntimeError("tracking broke")

    quiet = FailureWatch(broken)
    quiet.wrap(model, "step")
    with pytest.warns(ModelTrackWarning, match="tracking broke"), pytest.raises(ValueError):
        model.step(-1)  # even in strict mode, the user's exception wins
    quiet.stop()


def test_callers_and_caller_file_read_the_frames_above() -> None:
    from modeltrack.patching import caller_file, callers

    def hook() -> list[tuple[str, dict[str, object]]]:
        return list(callers(3))

    def fit(batch_size: int) -> list[tuple[str, dict[str, object]]]:
        return hook()

    frames = fit(batch_size=8)
    assert frames[0][0] == "fit" and frames[0][1]["batch_size"] == 8
    assert len(frames) == 3
    assert caller_file(0) == __file__
    assert caller_file(10_000) == ""


def test_class_family_builds_one_class_per_package_set_and_pickles_by_name() -> None:
    import pickle
    import sys as _sys

    from modeltrack.errors import InvalidValueError
    from modeltrack.families import ClassFamily, Member

    mod = types.ModuleType("fake_integration")
    _sys.modules["fake_integration"] = mod
    pkg_a, pkg_b = types.ModuleType("fam_a"), types.ModuleType("fam_b")
    for p in (pkg_a, pkg_b):
        p.Ready = True  # type: ignore[attr-defined]
        p.Base = type(f"Base_{p.__name__}", (), {})  # type: ignore[attr-defined]
    _sys.modules.update(fam_a=pkg_a, fam_b=pkg_b)
    try:

        class Impl(Member):
            _role = "Thing"

            def __init__(self, size: int = 1, package: str | None = None) -> None:
                self.size = size

        family = ClassFamily(
            "fake_integration",
            ("fam_a", "fam_b"),
            labels={"fam_a": "a", "fam_b": "b"},
            aliases={"a": "fam_a", "b": "fam_b"},
            bases={"Thing": lambda p: _sys.modules[p].Base},
            impls={"Thing": Impl},
            install_hint="pip install fam",
            marker="Ready",
        )
        mod.__getattr__ = family.attribute  # type: ignore[attr-defined]
        both = family.attribute("ModelTrackThing")
        assert both.__name__ == "ModelTrackThing_a_and_b" and issubclass(both, (pkg_a.Base, pkg_b.Base))
        thing = both(size=3)
        assert isinstance(thing, pkg_a.Base) and isinstance(thing, pkg_b.Base) and thing.size == 3
        only_b = both(size=4, package="b")  # redirected to the class of that package, initialised once
        assert type(only_b).__name__ == "ModelTrackThing_b" and not isinstance(only_b, pkg_a.Base)
        assert only_b.size == 4
        clone = pickle.loads(pickle.dumps(only_b))
        assert type(clone) is type(only_b) and clone.size == 4
        assert family.attribute("ModelTrackThing_b") is type(only_b)
        with pytest.raises(InvalidValueError, match="package='c'"):
            both(package="c")
        with pytest.raises(AttributeError):
            family.attribute("ModelTrackOther")
        del pkg_b.Ready  # not (fully) imported any more: the public name follows what is imported
        assert family.attribute("ModelTrackThing").__name__ == "ModelTrackThing_a"
    finally:
        for name in ("fake_integration", "fam_a", "fam_b"):
            _sys.modules.pop(name, None)
