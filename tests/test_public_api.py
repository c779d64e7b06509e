"""The public surface: ``mofa_kernel.__all__``, the contract's names, and a light import."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

import mofa_kernel

#: The names the contract says import from ``mofa_kernel``.
CONTRACT_NAMES = [
    "PluginType",
    "PluginState",
    "PluginPriority",
    "PluginMetadata",
    "PluginConfig",
    "PluginContext",
    "PluginEvent",
    "ReloadStrategy",
    "HotReloadConfig",
    "ReloadEvent",
    "AgentPlugin",
    "HotReloadable",
    "hookimpl",
    "hookspec",
    "PluginManager",
    "PluginError",
    "PluginLoadError",
    "PluginInitError",
    "PluginExecutionError",
    "PluginTimeoutError",
    "InvalidStateError",
    "PluginConfigError",
    "SerializationError",
    "DiscoveryError",
    "DependencyError",
    "MissingDependencyError",
    "DependencyCycleError",
    "PluginLifecycleError",
    "PluginNotFoundError",
    "to_json",
    "from_json",
]

#: Names bound by ``__init__.py``'s own imports, not part of the API.
IMPORT_PLUMBING: set[str] = set()

#: Imported on first use only; a plain ``import mofa_kernel`` must not pull them in.
HEAVY_MODULES = [
    "cattrs",
    "asyncio",
    "json",
    "tomllib",
    "tomli",
    "argparse",
    "watchfiles",
    "mofa_kernel._cli",
    "mofa_kernel._manager",
    "mofa_kernel._wire",
    "mofa_kernel._config",
    "mofa_kernel._discovery",
    "importlib.metadata",
]


def run_python(code: str, *, path: Path | None = None) -> str:
    env = dict(os.environ)
    if path is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(path), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_all_is_sorted_and_unique() -> None:
    assert mofa_kernel.__all__ == sorted(set(mofa_kernel.__all__))


def test_all_is_exactly_the_public_names() -> None:
    # In a fresh interpreter, so that no lazy name has been loaded into the namespace yet.
    out = run_python(
        """
        import json, mofa_kernel
        print(json.dumps({
            "namespace": [n for n in vars(mofa_kernel) if not n.startswith("_")],
            "lazy": sorted(mofa_kernel._LAZY),
            "all": mofa_kernel.__all__,
        }))
        """
    )
    found = json.loads(out)
    defined = set(found["namespace"]) - IMPORT_PLUMBING
    assert set(found["all"]) == defined | set(found["lazy"]) | {"__version__"}


def test_all_is_the_public_namespace_once_everything_is_loaded() -> None:
    for name in mofa_kernel.__all__:
        getattr(mofa_kernel, name)
    # Submodules that are public by name (mofa_kernel.testing, the pytest plugin) appear once
    # imported; names starting with "@" are pytest's assertion rewriting, which rewrites the
    # whole distribution of a plugin registered through the pytest11 entry point.
    public = {
        n
        for n, value in vars(mofa_kernel).items()
        if not n.startswith(("_", "@")) and not isinstance(value, types.ModuleType)
    } - IMPORT_PLUMBING
    assert public | {"__version__"} == set(mofa_kernel.__all__)


def test_dir_lists_every_export() -> None:
    assert set(mofa_kernel.__all__) <= set(dir(mofa_kernel))


@pytest.mark.parametrize("name", CONTRACT_NAMES)
def test_contract_name_imports(name: str) -> None:
    namespace: dict[str, object] = {}
    exec(f"from mofa_kernel import {name}", namespace)  # noqa: S102 - a fixed, known name
    assert namespace[name] is getattr(mofa_kernel, name)
    assert name in mofa_kernel.__all__


@pytest.mark.parametrize("name", mofa_kernel.__all__)
def test_exported_classes_show_the_public_module(name: str) -> None:
    value = getattr(mofa_kernel, name)
    if isinstance(value, type):
        assert value.__module__ == "mofa_kernel"


def test_unknown_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = mofa_kernel.Nope  # type: ignore[attr-defined]


def test_version_is_the_installed_distribution_version() -> None:
    from importlib.metadata import version

    assert mofa_kernel.__version__ == version("mofa-kernel")


def test_py_typed_is_shipped() -> None:
    from importlib.resources import files

    assert files("mofa_kernel").joinpath("py.typed").is_file()


def test_import_is_light() -> None:
    # Compare with a bare interpreter, so that what site or .pth files import does not count.
    out = run_python(
        f"""
        import sys
        wanted = {HEAVY_MODULES!r}
        before = {{m for m in wanted if m in sys.modules}}
        import mofa_kernel
        after = {{m for m in wanted if m in sys.modules}}
        print(sorted(after - before))
        """
    )
    assert ast.literal_eval(out.strip()) == []


def test_import_discovers_and_imports_no_plugin(tmp_path: Path) -> None:
    marker = tmp_path / "imported"
    (tmp_path / "side_effect_plugin.py").write_text(
        f"open({str(marker)!r}, 'w').close()\n", encoding="utf-8"
    )
    dist_info = tmp_path / "side_effect_plugin-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: side-effect-plugin\nVersion: 1.0\n", encoding="utf-8"
    )
    (dist_info / "entry_points.txt").write_text(
        "[mofa.plugins]\nside-effect = side_effect_plugin\n", encoding="utf-8"
    )
    out = run_python(
        """
        import sys
        import mofa_kernel
        print("side_effect_plugin" in sys.modules)
        """,
        path=tmp_path,
    )
    assert out.strip() == "False"
    assert not marker.exists()


def test_type_hints_of_every_public_class_resolve() -> None:
    """Shown as ``mofa_kernel.X``, classes still give their hints to typing, attrs and cattrs."""
    import typing

    import attrs

    classes = [getattr(mofa_kernel, name) for name in mofa_kernel.__all__]
    classes = [c for c in classes if isinstance(c, type)]
    classes += [
        v
        for family in (mofa_kernel.PluginEvent, mofa_kernel.ReloadEvent)
        for v in vars(family).values()
        if isinstance(v, type)
    ]
    for cls in classes:
        typing.get_type_hints(cls)
        if attrs.has(cls):
            attrs.resolve_types(cls)
