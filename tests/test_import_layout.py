"""No two dspy_otel modules import each other, directly or around a circle.

Every ``import`` counts, at the top of a module, under ``if TYPE_CHECKING:`` or inside a function; so does
the ``__init__`` of each package a module imports from outside that package (importing
``dspy_otel.config._parse`` runs ``dspy_otel/config/__init__.py`` first). The root package is left out:
every module is in it.
"""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

import dspy_otel

Graph = dict[str, set[str]]


def _modules(root: Path) -> dict[str, Path]:
    modules = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _imported(node: ast.AST, modules: dict[str, Path]) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name in modules]
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module in modules:
        return [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module for a in node.names]
    return []


def import_graph(root: Path) -> Graph:
    """Each module of the package at ``root`` -> the modules of the package its imports run."""
    modules = _modules(root)
    graph: Graph = {}
    for name, path in modules.items():
        edges = graph.setdefault(name, set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            for target in _imported(node, modules):
                edges.add(target)
                package = target.rpartition(".")[0]
                while "." in package:  # the __init__ of each enclosing package but the root
                    if not (name == package or name.startswith(package + ".")):
                        edges.add(package)
                    package = package.rpartition(".")[0]
        edges.discard(name)
    return graph


def cycle(graph: Graph) -> list[str] | None:
    """One circle of imports in ``graph`` (its first module repeated at the end), or ``None``."""
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as exc:
        return list(exc.args[1])
    return None


def test_no_module_imports_itself_around_a_circle() -> None:
    graph = import_graph(Path(dspy_otel.__file__).parent)
    assert "dspy_otel.config._table" in graph["dspy_otel.config._resolve"]  # the graph is read at all
    assert cycle(graph) is None, " -> ".join(cycle(graph) or [])


@pytest.mark.parametrize(
    ("sources", "found"),
    [
        ({"a.py": "import pkg.b", "b.py": "def f():\n    from pkg import a"}, True),
        ({"a.py": "from pkg.sub import x", "sub/__init__.py": "from pkg.sub._m import x", "sub/_m.py": ""}, False),
        ({"a.py": "", "sub/__init__.py": "from pkg.sub._m import x", "sub/_m.py": "from pkg.a import y"}, False),
        ({"a.py": "from pkg.sub._m import x", "sub/__init__.py": "import pkg.a", "sub/_m.py": ""}, True),
    ],
)
def test_the_check_finds_a_circle_through_a_function_or_a_package_init(
    tmp_path: Path, sources: dict[str, str], found: bool
) -> None:
    for relative, text in {"__init__.py": "", **sources}.items():
        path = tmp_path / "pkg" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert (cycle(import_graph(tmp_path / "pkg")) is not None) is found
