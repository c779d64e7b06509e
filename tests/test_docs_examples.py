"""The code the docs show is run here: each docs/examples/*.py program prints exactly its .out.

The plugin modules of the examples live in ``docs/examples/text-plugins/``, a
distribution of their own that pip can install (the quick start does). Here
they are installed for each run as that distribution: a dist-info folder with
its entry points, and the distribution's folder on the path.

After changing an example on purpose, write its new output with
``MOFA_UPDATE_DOC_EXAMPLES=1 pytest tests/test_docs_examples.py`` and review the diff.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from pathlib import Path

import pytest

from _examples import check_example_output

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

DOCS = Path(__file__).parent.parent / "docs"
EXAMPLES = DOCS / "examples"
PLUGINS = EXAMPLES / "text-plugins"
PYPROJECT = PLUGINS / "pyproject.toml"


def entry_points() -> dict[str, str]:
    data = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
    points: dict[str, str] = data["project"]["entry-points"]["mofa.plugins"]
    return points


PLUGIN_MODULES = sorted(PLUGINS / f"{v.split(':')[0]}.py" for v in entry_points().values())
PROGRAMS = sorted(EXAMPLES.glob("*.py"))


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """The example distribution, installed as metadata on a fresh path entry."""
    data = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
    name, version = data["project"]["name"], data["project"]["version"]
    dist_info = tmp_path / "site" / f"{name.replace('-', '_')}-{version}.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8"
    )
    lines = [f"{plugin_id} = {value}" for plugin_id, value in entry_points().items()]
    (dist_info / "entry_points.txt").write_text(
        "[mofa.plugins]\n" + "\n".join(lines) + "\n", encoding="utf-8"
    )
    return dist_info.parent


def test_there_are_examples() -> None:
    assert PROGRAMS
    assert PLUGIN_MODULES


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.name)
def test_example_prints_its_output(program: Path, site: Path, tmp_path: Path) -> None:
    # Only the example distribution's plugins, whatever else this environment has installed.
    env = {
        "PYTHONPATH": os.pathsep.join([str(site), str(PLUGINS)]),
        "MOFA_PLUGINS": ",".join(entry_points()),
    }
    check_example_output(program, tmp_path, env)


def test_plugin_modules_exist() -> None:
    for module in PLUGIN_MODULES:
        assert module.is_file(), f"{PYPROJECT.name} names {module.stem}, which is not there"


@pytest.mark.parametrize(("plugin_id", "value"), entry_points().items())
def test_entry_point_loads_a_plugin_with_that_id(plugin_id: str, value: str) -> None:
    from mofa_kernel import PluginManager

    module_name, _, attribute = value.partition(":")
    spec = importlib.util.spec_from_file_location(
        f"docs_example_{module_name}", PLUGINS / f"{module_name}.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    target = getattr(module, attribute)() if attribute else module
    assert PluginManager().register(target) == plugin_id


def included_files() -> set[str]:
    pattern = re.compile(r"```\{literalinclude\}\s+(\S+)")
    names: set[str] = set()
    for page in DOCS.glob("*.md"):
        for match in pattern.finditer(page.read_text(encoding="utf-8")):
            path = (page.parent / match.group(1)).resolve()
            if path.is_relative_to(EXAMPLES.resolve()):
                names.add(path.relative_to(EXAMPLES.resolve()).as_posix())
    return names


def test_every_example_is_shown_in_the_docs() -> None:
    root = EXAMPLES.resolve()
    files = {
        p.resolve().relative_to(root).as_posix()
        for p in EXAMPLES.rglob("*")
        if p.suffix in (".py", ".out", ".toml")
    }
    # Outputs are shown where the docs say what a program prints; programs always.
    shown = included_files()
    examples = [*PROGRAMS, *PLUGIN_MODULES, PYPROJECT]
    wanted = {p.resolve().relative_to(root).as_posix() for p in examples}
    assert wanted <= shown
    assert shown <= files
