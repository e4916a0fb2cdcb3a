"""The arrows point inward: ``events`` ← ``projections`` ← ``custody`` ← ``cli`` (STYLE.md, "The
house, at a glance"; issue 17).

Every module of the four top-level packages is parsed with :mod:`ast`; every ``import`` and
``from … import`` counts, wherever it is written: at module level, inside a function (a lazy
import is still a dependency) or under ``TYPE_CHECKING``. Relative imports are resolved against
the importing module's package.

Inside ``custody/`` no module imports itself back through others (issue 17): a cycle of
module-level imports breaks at import time depending on which module is imported first, and
one hidden behind a lazy import is the same knot, tied later. Every import counts here too; a
lazy import that closes a cycle is allowed only when recorded in :data:`LAZY_BY_DESIGN` with the
reason (the thin client: a command line must not import what only the service needs).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Inner first: a package may import only the packages listed before it.
LAYERS = ("events", "projections", "custody", "cli")

# (importing module, imported top-level package) -> why it is allowed. Empty: no exceptions today.
EXCEPTIONS: dict[tuple[str, str], str] = {}


# (importing module, imported module) -> why this lazy import may close a cycle in custody/.
# Only lazy imports (inside a function), and only for the thin client. Empty: none needed today.
LAZY_BY_DESIGN: dict[tuple[str, str], str] = {}
# Cycles that remain, each with its way out; a known debt, not a licence (the test fails when a
# listed edge no longer exists, so the entry goes with the cycle).
KNOWN_CYCLES: dict[tuple[str, str], str] = {}


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


def _imports_with_kind(tree: ast.Module) -> Iterator[tuple[ast.Import | ast.ImportFrom, str]]:
    """Every import statement of a module: ``module`` (run at import), ``type`` (under ``if
    TYPE_CHECKING``) or ``lazy`` (inside a function, run when it is called)."""

    def visit(node: ast.AST, kind: str) -> Iterator[tuple[ast.Import | ast.ImportFrom, str]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                yield child, kind
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                yield from visit(child, "lazy")
            elif (
                isinstance(child, ast.If)
                and "TYPE_CHECKING" in ast.unparse(child.test)
                and kind == "module"
            ):
                for inner in child.body:
                    yield from visit(ast.Module(body=[inner], type_ignores=[]), "type")
                for inner in child.orelse:
                    yield from visit(ast.Module(body=[inner], type_ignores=[]), kind)
            else:
                yield from visit(child, kind)

    yield from visit(tree, "module")


def module_edges(root: Path, top: str) -> dict[tuple[str, str], tuple[str, int]]:
    """``(importer, imported)`` module pairs inside ``top`` -> (kind, line) of the import that
    runs earliest (module before type before lazy). ``from package import name`` names the
    module ``package.name`` when there is one; a package's own ``__init__`` is not counted as
    imported by its modules (it holds no code)."""
    paths = {module_name(root, path): path for path in sorted((root / top).rglob("*.py"))}
    order = {"module": 0, "type": 1, "lazy": 2}
    edges: dict[tuple[str, str], tuple[str, int]] = {}
    for importer, path in paths.items():
        package = importer if path.name == "__init__.py" else importer.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node, kind in _imports_with_kind(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    parts = parts[: len(parts) - (node.level - 1)]
                    base = ".".join([*parts, *([node.module] if node.module else [])])
                names = [f"{base}.{alias.name}" for alias in node.names] or [base]
                names = [name if name in paths else base for name in names]
            for name in names:
                while name and name not in paths:
                    name = name.rpartition(".")[0]
                if not name or name == importer or paths[name].name == "__init__.py":
                    continue
                found = edges.get((importer, name))
                if found is None or order[kind] < order[found[0]]:
                    edges[(importer, name)] = (kind, node.lineno)
    return edges


def module_cycles(edges: dict[tuple[str, str], tuple[str, int]]) -> list[list[str]]:
    """The modules that import one another (strongly connected groups of more than one
    module), each sorted, with the edges between them as ``a -> b (kind:line)``."""
    graph: dict[str, set[str]] = defaultdict(set)
    for importer, imported in edges:
        graph[importer].add(imported)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def connect(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group: list[str] = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    found = []
    for group in sorted(groups):
        inner = [
            f"{a} -> {b} ({kind}:{line})"
            for (a, b), (kind, line) in sorted(edges.items())
            if a in group and b in group
        ]
        found.append(inner)
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


def _custody_edges_less(
    allowed: dict[tuple[str, str], str],
) -> dict[tuple[str, str], tuple[str, int]]:
    edges = module_edges(ROOT, "custody")
    return {pair: where for pair, where in edges.items() if pair not in allowed}


def test_no_import_cycle_between_modules_of_custody() -> None:
    """No module of ``custody/`` imports itself back through others, counting module-level,
    type-only and lazy imports, less the recorded lazy ones and the known debts."""
    edges = _custody_edges_less({**LAZY_BY_DESIGN, **KNOWN_CYCLES})
    assert module_cycles(edges) == [], "import cycles in custody/"


def test_no_import_cycle_between_modules_of_the_inner_layers_and_the_client() -> None:
    """``events/``, ``projections/`` and ``cli/`` have no module cycle at all, recorded or not
    (a type-only import counts: the district names what it reads of a change request through a
    protocol instead of importing the module that imports it)."""
    for top in ("events", "projections", "cli"):
        assert module_cycles(module_edges(ROOT, top)) == [], f"import cycles in {top}/"


def test_recorded_cycle_breakers_are_lazy_and_still_there() -> None:
    """An import recorded as allowed to close a cycle exists, and is lazy (inside a function):
    a module-level or type-only import closing a cycle is never allowed."""
    edges = module_edges(ROOT, "custody")
    for pair in {**LAZY_BY_DESIGN, **KNOWN_CYCLES}:
        assert pair in edges, f"stale entry: {pair}"
        assert edges[pair][0] == "lazy", f"{pair} is a {edges[pair][0]} import"


def test_the_service_wire_has_no_cycle_at_all() -> None:
    """``custody/service`` (the wire every engineer adds commands to) has no cycle, recorded
    or not: command tables import the argument readers and the server, never each other."""
    edges = {
        pair: where
        for pair, where in module_edges(ROOT, "custody").items()
        if pair[0].startswith("custody.service.") and pair[1].startswith("custody.service.")
    }
    assert module_cycles(edges) == []


def test_the_module_walk_sees_every_kind_of_import(tmp_path: Path) -> None:
    """The checker itself: module-level, type-only and lazy imports, ``from package import
    module`` and relative imports are edges; two modules importing each other (one of them
    lazily) are a cycle, and leaving out the lazy edge breaks it."""
    files = {
        "top/__init__.py": "",
        "top/pkg/__init__.py": "",
        "top/pkg/a.py": "from top.pkg import b\n",
        "top/pkg/b.py": (
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n"
            "    from . import c\n"
            "def f() -> None:\n"
            "    import top.pkg.a\n"
        ),
        "top/pkg/c.py": "from .d import name\n",
        "top/pkg/d.py": "name = 1\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    edges = module_edges(tmp_path, "top")
    assert edges == {
        ("top.pkg.a", "top.pkg.b"): ("module", 1),
        ("top.pkg.b", "top.pkg.c"): ("type", 3),
        ("top.pkg.b", "top.pkg.a"): ("lazy", 5),
        ("top.pkg.c", "top.pkg.d"): ("module", 1),
    }
    assert module_cycles(edges) == [
        ["top.pkg.a -> top.pkg.b (module:1)", "top.pkg.b -> top.pkg.a (lazy:5)"]
    ]
    without = {pair: where for pair, where in edges.items() if pair != ("top.pkg.b", "top.pkg.a")}
    assert module_cycles(without) == []
