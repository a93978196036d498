"""The package's shape: folders are layers, every import (lazy ones inside functions included)
points down the layer order or stays inside its package without a cycle, and
docs/architecture.md names every module that exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "lib" / "cryptosweep"
ARCHITECTURE = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The package module an import of ``name`` loads (an attribute import maps to its
    module)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    """module -> package modules it imports, at any depth of its code (lazy imports too).
    ``import a.b.c`` also runs ``a/__init__`` and ``a/b/__init__``; those edges are the
    parents' own business, so only the named module counts."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                targets = [f"{base}.{alias.name}" for alias in node.names] or [base]
            for target in targets:
                if not target.startswith("cryptosweep"):
                    continue
                resolved = _resolve(target, modules)
                if resolved and resolved != name:
                    graph[name].add(resolved)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan 1972)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


#: The layers, bottom up: a module may import its own package and the packages before it.
LAYERS = ("core", "trading", "judging", "records", "execution", "strategies", "production",
          "sweep", "reporting", "marketdata", "nightly", "walkforward", "explore")
#: The top level holds only the entry points, above every layer.
ENTRY_POINTS = ("cryptosweep", "cryptosweep.cli", "cryptosweep.api", "cryptosweep.logs",
                "cryptosweep.__main__")


def layer_of(module: str) -> int:
    """The position of ``module``'s layer (entry points above every layer)."""
    if module in ENTRY_POINTS:
        return len(LAYERS)
    package = module.split(".")[1]
    assert package in LAYERS, f"{module} is in no layer: put it in a layer package"
    return LAYERS.index(package)


def test_the_top_level_holds_only_entry_points() -> None:
    top = {name for name in _modules() if name.count(".") <= 1}
    packages = {name for name in top if (PACKAGE / name.split(".")[-1]).is_dir()}
    assert top - packages <= set(ENTRY_POINTS)
    assert {name.split(".")[1] for name in packages} <= set(LAYERS)


def test_every_import_points_down_the_layers() -> None:
    upward = sorted(
        (name, target)
        for name, targets in import_graph().items()
        for target in targets
        if layer_of(target) > layer_of(name)
    )
    assert upward == []


def test_the_layer_check_finds_an_upward_import() -> None:
    """The check itself: a core module importing the sweep would be caught."""
    assert layer_of("cryptosweep.sweep.runner") > layer_of("cryptosweep.core.config")
    assert layer_of("cryptosweep.cli") > layer_of("cryptosweep.explore.widgets")


def test_import_graph_has_no_cycles() -> None:
    assert _cycles(import_graph()) == []


def test_architecture_map_names_every_module() -> None:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    named = set(re.findall(r"`([a-z_/]+\.py)`", text))
    missing = []
    for path in _modules().values():
        relative = path.relative_to(PACKAGE).as_posix()
        if path.name == "__init__.py" and path.parent != PACKAGE:
            continue  # a package is named by its folder
        if relative not in named and path.name not in named:
            missing.append(relative)
    assert missing == []


def test_the_objective_knows_nothing_of_the_sweep() -> None:
    """``trading/`` is what a worker calls: it may read the typed spec and the leaves, never
    the strategies, executors, store or runner."""
    for name, targets in import_graph().items():
        if name.startswith("cryptosweep.trading"):
            outside = {t for t in targets
                       if not t.startswith(("cryptosweep.trading", "cryptosweep.core"))}
            assert outside == set(), (name, outside)


def test_reproducibility_is_a_leaf_every_worker_can_import_cheaply() -> None:
    graph = import_graph()
    assert graph["cryptosweep.core.reproducibility"] == set()
