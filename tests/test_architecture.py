"""The shape of the code: no import cycles (function-level imports and ``importlib`` name
strings included), the layers contract, and a fast, framework-free ``import modeltrack``."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULE_NAME = re.compile(r"modeltrack(\.\w+)+")


def _modules() -> dict[str, Path]:
    mods = {}
    for base, pkg in (("modeltrack", "modeltrack"), ("integrations", "modeltrack.integrations")):
        for f in sorted((ROOT / base).rglob("*.py")):
            parts = [p for p in f.relative_to(ROOT / base).with_suffix("").parts if p != "__init__"]
            mods[".".join([pkg, *parts])] = f
    return mods


def _nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node, but not the bodies of ``if TYPE_CHECKING:`` (never run)."""
    out: list[ast.AST] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                todo.extend(child.orelse)
                out.extend(child.orelse)
                continue
            out.append(child)
            todo.append(child)
    return out


def import_graph() -> dict[str, set[str]]:
    """Module → modules it imports anywhere (top level, in functions, or by name string)."""
    mods = _modules()

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    edges: dict[str, set[str]] = {m: set() for m in mods}
    for m, f in mods.items():
        here = m if f.name == "__init__.py" else m.rpartition(".")[0]
        for node in _nodes(ast.parse(f.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
                base = here
                for _ in range(max(node.level - 1, 0)):
                    base = base.rpartition(".")[0]
                mod = (f"{base}.{node.module}" if node.module else base) if node.level else str(node.module)
                targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in mods else mod for a in node.names]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and MODULE_NAME.fullmatch(node.value):
                targets = [node.value]
            for t in targets:
                r = resolve(t)
                if r and r != m:
                    edges[m].add(r)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[set[str]] = []
    counter = 0
    for start in edges:
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges[w]))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = set()
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.add(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(comp)
    return out


def test_no_import_cycles() -> None:
    found = cycles(import_graph())
    assert found == [], [sorted(c) for c in found]


def test_the_cycle_counter_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_core_names_no_integration() -> None:
    edges = import_graph()
    core = [m for m in edges if not m.startswith("modeltrack.integrations")]
    offenders = {m: sorted(t for t in edges[m] if t.startswith("modeltrack.integrations")) for m in core}
    assert {m: t for m, t in offenders.items() if t} == {}


def test_layers_contract_is_kept() -> None:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    out = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:]
    assert "broken" not in out.stdout.lower().split("contracts:")[-1].replace("0 broken", "")


def test_import_is_framework_free() -> None:
    code = (
        "import sys, time; t = time.perf_counter(); import modeltrack; "
        "print(time.perf_counter() - t); "
        "print(sorted(m for m in ('torch', 'keras', 'sklearn', 'lightning', 'pytorch_lightning', 'numpy', 'boto3') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    _, loaded = out.stdout.splitlines()
    assert loaded == "[]"
