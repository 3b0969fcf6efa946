"""The project's own imports, drawn as a graph: no cycle, and the package rules hold.

Every ``import`` counts, at module level or inside a function (a deferred import hides a
circle, it does not remove it).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
PACKAGES = ("operando_core", "dems", "tofsims", "pipelines")


def _modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


def _imported(tree: ast.AST, module: str, modules: dict[str, Path]) -> set[str]:
    """Project modules a module imports (``from a import b``: ``a.b`` when it is a module)."""
    package = module if modules[module].name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            names = [f"{base}.{alias.name}" for alias in node.names]
            names = [n if n in modules else base for n in names]
        else:
            continue
        found |= {n for n in names if n in modules and n != module}
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = _modules()
    return {
        name: _imported(ast.parse(path.read_text(encoding="utf-8")), name, modules)
        for name, path in modules.items()
    }


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 visiting, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_import_graph_has_no_cycle(graph):
    assert len(graph) > 100
    cycle = _cycle(graph)
    assert cycle is None, " -> ".join(cycle)


def test_a_cycle_would_be_found():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("operando_core", ("dems", "tofsims", "pipelines")),
        ("dems", ("tofsims", "pipelines")),
        ("tofsims", ("dems", "pipelines")),
    ],
)
def test_domain_packages_import_neither_each_other_nor_pipelines(graph, package, forbidden):
    for module, targets in graph.items():
        if module.split(".")[0] == package:
            bad = [t for t in targets if t.split(".")[0] in forbidden]
            assert not bad, f"{module} imports {bad}"
