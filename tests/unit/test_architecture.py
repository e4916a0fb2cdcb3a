"""The arrows point inward: ``events`` ← ``projections`` ← ``custody`` ← ``cli`` (STYLE.md, "The
house, at a glance"; issue 17).

Every module of the four top-level packages is parsed with :mod:`ast`; every ``import`` and
``from … import`` counts, wherever it is written: at module level, inside a function (a lazy
import is still a dependency) or under ``TYPE_CHECKING``. Relative imports are resolved against
the importing module's package.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Inner first: a package may import only the packages listed before it.
LAYERS = ("events", "projections", "custody", "cli")

# (importing module, imported top-level package) -> why it is allowed. Empty: no exceptions today.
EXCEPTIONS: dict[tuple[str, str], str] = {}


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(root: Path, path: Path) -> list[tuple[str, int]]:
    """Every module name ``path`` imports (absolute, relative ones resolved), with its line."""
    name = module_name(root, path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                found.append((node.module or "", node.lineno))
                continue
            base = package.split(".")
            base = base[: len(base) - (node.level - 1)]
            found.append((".".join([*base, *([node.module] if node.module else [])]), node.lineno))
    return found


def package_edges(root: Path, tops: tuple[str, ...]) -> dict[tuple[str, str], list[str]]:
    """``(importer top-level package, imported one)`` -> ``module:line`` of each such import."""
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for top in tops:
        for path in sorted((root / top).rglob("*.py")):
            importer = module_name(root, path)
            for imported, line in imports_of(root, path):
                target = imported.split(".")[0]
                if target in tops and target != top:
                    edges[(top, target)].append(f"{importer}:{line} imports {imported}")
    return edges


def violations(
    edges: dict[tuple[str, str], list[str]],
    layers: tuple[str, ...],
    exceptions: dict[tuple[str, str], str],
) -> list[str]:
    """Imports of an outer layer from an inner one, less the recorded exceptions."""
    found = []
    for (importer, imported), where in sorted(edges.items()):
        if layers.index(imported) < layers.index(importer):
            continue
        for place in where:
            module = place.partition(":")[0]
            if (module, imported) not in exceptions:
                found.append(place)
    return found


def cycles(edges: dict[tuple[str, str], list[str]]) -> list[list[str]]:
    """Every cycle of the package graph, each as the packages along it (first one repeated)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for importer, imported in edges:
        graph[importer].add(imported)
    found: list[list[str]] = []

    def walk(node: str, path: list[str]) -> None:
        for nxt in sorted(graph[node]):
            if nxt == path[0]:
                found.append([*path, nxt])
            elif nxt not in path and nxt > path[0]:  # each cycle once, from its least package
                walk(nxt, [*path, nxt])

    for start in sorted(graph):
        walk(start, [start])
    return found


def test_no_package_imports_an_outer_one() -> None:
    """``events`` imports nothing of projections, custody or cli; ``projections`` nothing of
    custody or cli; ``custody`` nothing of cli; lazy and type-only imports included."""
    found = violations(package_edges(ROOT, LAYERS), LAYERS, EXCEPTIONS)
    assert not found, "imports pointing outward:\n" + "\n".join(found)


def test_no_import_cycle_between_top_level_packages() -> None:
    """No chain of imports leads from a top-level package back to itself."""
    assert cycles(package_edges(ROOT, LAYERS)) == []


def test_every_exception_is_still_needed() -> None:
    """An exception recorded above names an import that still exists (stale ones go)."""
    edges = package_edges(ROOT, LAYERS)
    present = {
        (place.partition(":")[0], imported)
        for (_, imported), where in edges.items()
        for place in where
    }
    assert set(EXCEPTIONS) <= present


def test_the_walk_sees_lazy_relative_and_type_only_imports(tmp_path: Path) -> None:
    """The checker itself: an import under ``TYPE_CHECKING`` and a lazy one inside a function
    are outward arrows, a relative import is resolved against its package, two packages that
    import each other are a cycle, and a recorded exception silences only its own module."""
    files = {
        "inner/__init__.py": "",
        "inner/other.py": "",
        "inner/deep/__init__.py": "",
        "inner/deep/mod.py": (
            "from typing import TYPE_CHECKING\n"
            "from ..other import helper\n"
            "if TYPE_CHECKING:\n"
            "    from outer.api import Thing\n"
            "def lazy() -> None:\n"
            "    import outer.api\n"
        ),
        "inner/rel.py": "from .deep import mod\nfrom outer import api\n",
        "outer/__init__.py": "",
        "outer/api.py": "from inner.deep import mod\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert imports_of(tmp_path, tmp_path / "inner/deep/mod.py") == [
        ("typing", 1),
        ("inner.other", 2),
        ("outer.api", 4),
        ("outer.api", 6),
    ]
    assert imports_of(tmp_path, tmp_path / "inner/rel.py") == [("inner.deep", 1), ("outer", 2)]
    layers = ("inner", "outer")
    edges = package_edges(tmp_path, layers)
    assert violations(edges, layers, {}) == [
        "inner.deep.mod:4 imports outer.api",
        "inner.deep.mod:6 imports outer.api",
        "inner.rel:2 imports outer",
    ]
    assert cycles(edges) == [["inner", "outer", "inner"]]
    assert violations(edges, layers, {("inner.deep.mod", "outer"): "a reason"}) == [
        "inner.rel:2 imports outer"
    ]
