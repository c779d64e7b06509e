"""A fake installation for the benchmarks: thousands of dist-info folders in one site directory.

Each distribution is written the way pip leaves it (``METADATA``, ``WHEEL``,
``INSTALLER``, ``RECORD``, and ``entry_points.txt`` where it declares any), so
``importlib.metadata``, stevedore, pluggy and mofa-kernel all read it as they
read a real ``site-packages``. A few of them carry ``mofa.plugins`` entry points
whose modules are real, importable no-op plugins.
"""

from __future__ import annotations

import importlib
from pathlib import Path

__all__ = ["MARKERS_ENV", "PLUGIN_PACKAGE", "make_site"]

#: The package every fake plugin module lives in (one submodule per plugin).
PLUGIN_PACKAGE = "mofabench_plugins"

#: Set to a folder to have each plugin module leave a file there when it is imported.
MARKERS_ENV = "MOFABENCH_MARKERS"

_PLUGIN_MODULE = """\
import os

from mofa_kernel import AgentPlugin, PluginMetadata, PluginType

if os.environ.get("MOFABENCH_MARKERS"):
    open(os.path.join(os.environ["MOFABENCH_MARKERS"], "{pid}"), "w").close()


class Plugin(AgentPlugin):
    metadata = PluginMetadata(
        "{pid}", "Bench {index}", PluginType.TOOL, version="1.{index}.0",
        description="A no-op plugin of the benchmark installation.",
        capabilities=("bench",),
    )

    async def execute(self, input):
        return input
"""


def _write_distribution(
    site: Path,
    name: str,
    version: str,
    entry_points: str | None,
    files: dict[str, str],
    requires: str,
) -> None:
    stem = f"{name.replace('-', '_')}-{version}"
    dist_info = site / f"{stem}.dist-info"
    dist_info.mkdir()
    metadata = (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        f"Summary: Distribution {name} of the benchmark installation\n"
        f"Requires-Python: >=3.10\nRequires-Dist: {requires}\n\n"
        f"{name}\n{'=' * len(name)}\n\nA generated distribution.\n"
    )
    contents = {
        "METADATA": metadata,
        "WHEEL": (
            "Wheel-Version: 1.0\nGenerator: mofa-bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
        "INSTALLER": "pip\n",
        "top_level.txt": name.replace("-", "_") + "\n",
    }
    if entry_points is not None:
        contents["entry_points.txt"] = entry_points
    for relative, text in files.items():
        target = site / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    for file_name, text in contents.items():
        (dist_info / file_name).write_text(text, encoding="utf-8")
    record = [f"{stem}.dist-info/{file_name},," for file_name in contents]
    record += [f"{relative},," for relative in files]
    record.append(f"{stem}.dist-info/RECORD,,")
    (dist_info / "RECORD").write_text("\n".join(record) + "\n", encoding="utf-8")


def make_site(site: Path, distributions: int, plugins: int) -> list[str]:
    """Write ``distributions`` distributions into ``site``, ``plugins`` with one plugin each.

    Four distributions in nine declare other entry points (console scripts,
    pytest plugins), as in real installations. Returns the plugin ids, in order.
    """
    site.mkdir(parents=True, exist_ok=True)
    package = site / PLUGIN_PACKAGE
    package.mkdir(exist_ok=True)
    (package / "__init__.py").write_text('"""Benchmark plugins."""\n', encoding="utf-8")
    step = max(1, distributions // max(1, plugins))
    plugin_ids: list[str] = []
    for index in range(distributions):
        name = f"bench-dist-{index:05d}"
        sections: list[str] = []
        files: dict[str, str] = {}
        requires = "attrs>=23.1"
        module = f"bench_dist_{index:05d}"
        if index % 9 < 4:  # about as many as in real environments: 4 in 9, a few lines each
            scripts = "".join(f"{name}-{k} = {module}.cli:main{k}\n" for k in range(1 + index % 3))
            sections.append(f"[console_scripts]\n{scripts}")
            if index % 9 == 0:
                sections.append(f"[pytest11]\n{module} = {module}.testing\n")
        if index % step == 0 and len(plugin_ids) < plugins:
            pid = f"bench-{len(plugin_ids):03d}"
            module = f"{PLUGIN_PACKAGE}.p{len(plugin_ids):03d}"
            sections.append(f"[mofa.plugins]\n{pid} = {module}:Plugin\n")
            files[f"{PLUGIN_PACKAGE}/p{len(plugin_ids):03d}.py"] = _PLUGIN_MODULE.format(
                pid=pid, index=len(plugin_ids)
            )
            plugin_ids.append(pid)
            requires = "mofa-kernel>=0.1"
        entry_points = "\n".join(sections) if sections else None
        version = f"1.{index % 7}.{index % 11}"
        _write_distribution(site, name, version, entry_points, files, requires)
    importlib.invalidate_caches()
    return plugin_ids
