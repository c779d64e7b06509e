"""The kernel's import layers: every import goes down the table below, and no two modules
import each other, however indirectly.

Every import counts: at module level, under ``TYPE_CHECKING`` and inside
functions, since each one ties the importer to the imported module. A new
module must be placed in :data:`LAYERS` before it can be imported. ``tox -e
lint`` runs this module alone, on the source tree.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Final

PACKAGE: Final = "mofa_kernel"
#: The source tree, read without importing it (``tox -e lint`` installs nothing).
SOURCE: Final = Path(__file__).resolve().parents[1] / "src" / PACKAGE

#: Lowest first. A module may import from its own layer and the layers above it in this
#: list, never from one below. Names are the package's top-level modules and subpackages
#: (a subpackage's modules share its layer); ``""`` is the package's ``__init__``.
LAYERS: Final[tuple[tuple[str, tuple[str, ...]], ...]] = (
    (
        "model",
        (
            "_types",
            "_metadata",
            "_events",
            "_errors",
            "_reload_config",
            "_plugin",
            "_context",
            "_hookspecs",
            "_public",
            "_ids",
        ),
    ),
    (
        "engines",
        (
            "_wire",
            "_deadline",
            "_blocking",
            "_event_bus",
            "_graph",
            "_adapters",
            "_settings",
            "_toml_limits",
            "_slow_import",
            "_awaited_io",
        ),
    ),
    (
        "environment",
        (
            "_scanner",
            "_source",
            "_distributions",
            "_discovery",
            "_cache",
            "_trust_guard",
            "_trust",
            "_config",
        ),
    ),
    ("isolation", ("_isolation",)),
    ("runtime", ("_runtime", "_records")),
    ("reload", ("_reload",)),
    ("manager", ("_manager",)),
    ("public names", ("",)),
    # Built on the public names, like any host (and _awaited_io, for its event loop's idle
    # waits): serving plugins as dora-rs nodes.
    ("integrations", ("dora",)),
    (
        "command line and testing",
        (
            "_cli",
            "testing",
            "_conformance",
            "_lifecycle_run",
            "_sandbox",
            "_pytest_plugin",
            "__main__",
        ),
    ),
)

#: Imports allowed to go up a layer, each with the reason and the issue that removes it.
#: Empty: the runtime redesign (issue 10) removed the last ones. An import that goes up
#: and is not listed here fails the test.
ALLOWED_UPWARD: Final[frozenset[tuple[str, str]]] = frozenset()

#: Import cycles allowed (as sorted module lists), each with its reason. Empty since issue 10.
ALLOWED_CYCLES: Final[frozenset[tuple[str, ...]]] = frozenset()


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name)."""
    found: dict[str, Path] = {}
    for path in sorted(SOURCE.rglob("*.py")):
        parts = list(path.relative_to(SOURCE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imported(name: str, path: Path, known: set[str]) -> Iterator[tuple[int, str]]:
    """``(line, module)`` for every import in ``path`` of another module of the package."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            # ``from P import n`` imports the module P.n when there is one.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                yield node.lineno, target


def _graph() -> dict[str, dict[str, int]]:
    """Module -> the package's modules it imports, each with the first line importing it."""
    modules = _modules()
    known = set(modules)
    graph: dict[str, dict[str, int]] = {}
    for name, path in modules.items():
        edges: dict[str, int] = {}
        for line, target in _imported(name, path, known):
            edges.setdefault(target, line)
        graph[name] = edges
    return graph


def _layer_of(module: str) -> int | None:
    top = module.removeprefix(PACKAGE).removeprefix(".").partition(".")[0]
    for index, (_, members) in enumerate(LAYERS):
        if top in members:
            return index
    return None


def _reachable(graph: dict[str, dict[str, int]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for target in graph.get(todo.pop(), {}):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def _cycles(graph: dict[str, dict[str, int]]) -> set[tuple[str, ...]]:
    """Each group of modules that import each other, directly or not, as a sorted tuple."""
    reach = {module: _reachable(graph, module) for module in graph}
    return {
        tuple(sorted(other for other in reach[module] if module in reach[other]))
        for module in graph
        if module in reach[module]
    }


def test_every_module_has_a_layer() -> None:
    unplaced = sorted(module for module in _modules() if _layer_of(module) is None)
    assert not unplaced, (
        f"modules in no layer: {', '.join(unplaced)}; add each to LAYERS in tests/test_layers.py"
    )


def test_imports_only_go_down() -> None:
    names = [layer for layer, _ in LAYERS]
    graph = _graph()
    upward: list[str] = []
    for module, edges in sorted(graph.items()):
        mine = _layer_of(module)
        for target, line in sorted(edges.items()):
            theirs = _layer_of(target)
            if mine is None or theirs is None or theirs <= mine:
                continue
            if (module, target) not in ALLOWED_UPWARD:
                upward.append(
                    f"{module} (line {line}, layer {names[mine]!r}) imports {target} "
                    f"(layer {names[theirs]!r})"
                )
    assert not upward, "imports that go up a layer:\n" + "\n".join(upward)


def test_no_import_cycles() -> None:
    found = _cycles(_graph())
    new = sorted(found - ALLOWED_CYCLES)
    assert not new, "import cycles:\n" + "\n".join(" <-> ".join(cycle) for cycle in new)


def test_the_allowances_are_still_needed() -> None:
    """An allowance whose import or cycle is gone must be deleted, so that it cannot return."""
    graph = _graph()
    stale = [f"{a} -> {b}" for a, b in sorted(ALLOWED_UPWARD) if b not in graph.get(a, {})]
    stale += [" <-> ".join(cycle) for cycle in sorted(ALLOWED_CYCLES - _cycles(graph))]
    assert not stale, "remove from tests/test_layers.py, no longer true:\n" + "\n".join(stale)


def test_the_checker_sees_every_kind_of_import(tmp_path: Path) -> None:
    """The parser itself: relative, absolute, ``TYPE_CHECKING`` and function-level imports."""
    module = tmp_path / "probe.py"
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "from . import _cache\n"
        "from ._wire import to_data\n"
        "import mofa_kernel._source\n"
        "if TYPE_CHECKING:\n"
        "    from ._manager import PluginManager\n"
        "def later():\n"
        "    from ._cli import main\n",
        encoding="utf-8",
    )
    known = set(_modules())
    found = {target for _, target in _imported("mofa_kernel._probe", module, known)}
    assert found == {
        "mofa_kernel._cache",
        "mofa_kernel._wire",
        "mofa_kernel._source",
        "mofa_kernel._manager",
        "mofa_kernel._cli",
    }
    assert _cycles({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}) == {
        ("a", "b", "c")
    }
