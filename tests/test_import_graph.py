"""The package's import graph has no cycle, counting every import (module level or inside a function).

A cycle hidden behind a function-level import still ties two modules into one unit (neither can be read,
tested or moved alone) and breaks as soon as someone hoists the import. The graph is read from the source with
``ast``, so nothing is imported and optional dependencies do not matter.
"""

from __future__ import annotations

import ast
from pathlib import Path

import spvis

PACKAGE_ROOT = Path(spvis.__file__).resolve().parent


def _modules() -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package ``__init__``) of every module under src/spvis."""
    modules = {}
    for path in PACKAGE_ROOT.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        modules[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return modules


def _resolve(name: str, modules: dict) -> str | None:
    """The module ``name`` lives in (the longest known prefix: ``a.b.func`` -> ``a.b``), None outside spvis."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    """Module -> the spvis modules it imports anywhere in its body (``from pkg import sub`` counts ``pkg.sub``)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, (path, is_package) in modules.items():
        package = name if is_package else name.rpartition(".")[0]
        targets: set[str | None] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets.update(_resolve(alias.name, modules) for alias in node.names if alias.name.startswith("spvis"))
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                if source == "spvis" or source.startswith("spvis."):
                    for alias in node.names:
                        full = f"{source}.{alias.name}"
                        targets.add(full if full in modules else _resolve(source, modules))
        graph[name] = {t for t in targets if t is not None and t != name}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return cycles


def test_cycle_finder_sees_a_cycle_behind_a_function_level_import():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_import_graph_reads_the_known_edges():
    graph = import_graph()
    assert "spvis.data.rle" in graph["spvis.data.segmentation"]
    assert "spvis.data.synth_motion" in graph["spvis.data.synth_identity"]


def test_spvis_has_no_import_cycle():
    cycles = find_cycles(import_graph())
    assert cycles == [], "import cycles (each group imports itself through the others):\n" + "\n".join(
        " <-> ".join(cycle) for cycle in cycles)
