"""Real plugin distributions written into a folder, and a virtualenv that pip installs them into.

conftest.py builds one :class:`KernelVenv` per test session from these parts.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import venv
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HELLO = ROOT / "sample_plugins" / "hello"
BIN = "Scripts" if sys.platform == "win32" else "bin"


def write_distribution(
    root: Path,
    name: str,
    *,
    modules: Mapping[str, str],
    plugins: Mapping[str, str],
    dependencies: Sequence[str] = ("mofa-kernel",),
    version: str = "1.0",
) -> Path:
    """Write a buildable plugin distribution: ``modules`` maps package name -> its __init__.py."""
    project = root / name
    for package, text in modules.items():
        target = project / "src" / package / "__init__.py"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text), encoding="utf-8")
    entry_points = "\n".join(
        f"{json.dumps(pid)} = {json.dumps(value)}" for pid, value in plugins.items()
    )
    packages = ", ".join(json.dumps(f"src/{package}") for package in modules)
    (project / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""\
            [build-system]
            requires = ["hatchling>=1.18"]
            build-backend = "hatchling.build"

            [project]
            name = "{name}"
            version = "{version}"
            requires-python = ">=3.10"
            dependencies = {json.dumps(list(dependencies))}

            [project.entry-points."mofa.plugins"]
            """
        )
        + entry_points
        + f"\n\n[tool.hatch.build.targets.wheel]\npackages = [{packages}]\n",
        encoding="utf-8",
    )
    return project


MARKER = """\
import os
import pathlib

if os.environ.get("MKT_MARKER_DIR"):
    pathlib.Path(os.environ["MKT_MARKER_DIR"], "{name}.imported").write_text("imported")
"""

ALPHA = """\
from mofa_kernel import AgentPlugin, PluginMetadata, PluginPriority, PluginType


class AlphaPlugin(AgentPlugin):
    metadata = PluginMetadata(
        "alpha", "Alpha", PluginType.TOOL, version="1.0", priority=PluginPriority.HIGH
    )

    async def execute(self, input):
        return "alpha:" + input
"""

BETA = """\
from mofa_kernel import PluginMetadata, PluginType, hookimpl


@hookimpl
def plugin_metadata():
    return PluginMetadata("beta", "Beta", PluginType.SKILL, dependencies=("alpha",))


@hookimpl
async def execute(input):
    return "beta:" + input[::-1]
"""

GAMMA = """\
from mofa_kernel import AgentPlugin, PluginMetadata, PluginType


class _Gamma(AgentPlugin):
    metadata = PluginMetadata("gamma", "Gamma", PluginType.TOOL)

    async def execute(self, input):
        return str(len(input))


def make():
    return _Gamma()
"""

NEEDY = """\
from mofa_kernel import PluginMetadata, PluginType, hookimpl


@hookimpl
def plugin_metadata():
    return PluginMetadata("needy", "Needy", PluginType.TOOL, dependencies=("ghost",))


@hookimpl
def execute(input):
    return input
"""

CYCLE = """\
from mofa_kernel import AgentPlugin, PluginMetadata, PluginType


class Ping(AgentPlugin):
    metadata = PluginMetadata("ping", "Ping", PluginType.TOOL, dependencies=("pong",))

    async def execute(self, input):
        return input


class Pong(AgentPlugin):
    metadata = PluginMetadata("pong", "Pong", PluginType.TOOL, dependencies=("ping",))

    async def execute(self, input):
        return input
"""

TWIN = """\
from mofa_kernel import AgentPlugin, PluginMetadata, PluginType


class TwinPlugin(AgentPlugin):
    metadata = PluginMetadata("twin", "Twin", PluginType.TOOL)

    async def execute(self, input):
        return input
"""

GATED = (
    MARKER.format(name="gated")
    + """
from mofa_kernel import PluginMetadata, PluginType, hookimpl


@hookimpl
def plugin_metadata():
    return PluginMetadata("gated", "Gated", PluginType.TOOL)


@hookimpl
def execute(input):
    return "gated:" + input
"""
)

SLEEPY = """\
import asyncio

from mofa_kernel import AgentPlugin, PluginMetadata, PluginType


class SleepyPlugin(AgentPlugin):
    metadata = PluginMetadata("sleepy", "Sleepy", PluginType.TOOL)

    async def start(self):
        await asyncio.Event().wait()

    async def execute(self, input):
        return input
"""


def _distributions(root: Path) -> dict[str, Path]:
    """Every test distribution, by distribution name."""
    d = write_distribution
    future_module = (
        MARKER.format(name="future") + "\nraise RuntimeError('must never be imported')\n"
    )
    return {
        "mkt-alpha": d(root, "mkt-alpha", modules={"mkt_alpha": ALPHA},
                       plugins={"alpha": "mkt_alpha:AlphaPlugin"},
                       dependencies=["mofa-kernel>=0.1"]),
        "mkt-beta": d(root, "mkt-beta", modules={"mkt_beta": BETA}, plugins={"beta": "mkt_beta"},
                      dependencies=["mofa-kernel", "mkt-alpha"]),
        "mkt-gamma": d(root, "mkt-gamma", modules={"mkt_gamma": GAMMA},
                       plugins={"gamma": "mkt_gamma:make"}),
        "mkt-broken": d(root, "mkt-broken", plugins={"broken": "mkt_broken:Plugin"},
                        modules={"mkt_broken": "\n\nraise RuntimeError('broken on purpose')\n"}),
        "mkt-lacking": d(root, "mkt-lacking", plugins={"lacking": "mkt_lacking:Plugin"},
                         modules={"mkt_lacking": "import mkt_not_installed_anywhere\n"}),
        "mkt-needy": d(root, "mkt-needy", modules={"mkt_needy": NEEDY},
                       plugins={"needy": "mkt_needy"}),
        "mkt-cycle": d(root, "mkt-cycle", modules={"mkt_cycle": CYCLE},
                       plugins={"ping": "mkt_cycle:Ping", "pong": "mkt_cycle:Pong"}),
        "mkt-gated": d(root, "mkt-gated", modules={"mkt_gated": GATED},
                       plugins={"gated": "mkt_gated"}),
        "mkt-twin-one": d(root, "mkt-twin-one", modules={"mkt_twin_one": TWIN},
                          plugins={"twin": "mkt_twin_one:TwinPlugin"}),
        "mkt-twin-two": d(root, "mkt-twin-two", modules={"mkt_twin_two": TWIN},
                          plugins={"twin": "mkt_twin_two:TwinPlugin"}, version="2.0"),
        "mkt-future": d(root, "mkt-future", modules={"mkt_future": future_module},
                        plugins={"future": "mkt_future:Plugin"},
                        dependencies=["mofa-kernel>=99"]),
        "mkt-sleepy": d(root, "mkt-sleepy", modules={"mkt_sleepy": SLEEPY},
                        plugins={"sleepy": "mkt_sleepy:SleepyPlugin"}),
        # Installed only by the tests that need it: importing it leaves a marker, then fails.
        "mkt-tripwire": d(root, "mkt-tripwire", plugins={"tripwire": "mkt_tripwire:Plugin"},
                          modules={"mkt_tripwire": MARKER.format(name="tripwire")
                                   + "\nraise RuntimeError('tripwire imported')\n"}),
    }  # fmt: skip


#: The distributions of a healthy installation: the README's sample and three test plugins.
GOOD = ("mofa-sample-hello", "mkt-alpha", "mkt-beta", "mkt-gamma")
#: The distributions that go wrong, each in its own way.
TROUBLED = (
    "mkt-broken",
    "mkt-lacking",
    "mkt-needy",
    "mkt-cycle",
    "mkt-gated",
    "mkt-twin-one",
    "mkt-twin-two",
    "mkt-future",
)


def _run(argv: Sequence[str | os.PathLike[str]], **kwargs: object) -> None:
    result = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, check=False, **kwargs
    )
    if result.returncode != 0:
        pytest.fail(f"{' '.join(map(str, argv))} failed:\n{result.stdout}\n{result.stderr}")


def _build_wheels(projects: Iterable[Path], wheelhouse: Path) -> None:
    # Where this interpreter has hatchling, building without isolation downloads nothing.
    isolation = ["--no-build-isolation"] if importlib.util.find_spec("hatchling") else []
    _run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
         "--no-deps", *isolation, "--wheel-dir", wheelhouse, *projects],
    )  # fmt: skip


class KernelVenv:
    """A virtualenv with mofa-kernel installed, and the wheels of the test distributions."""

    def __init__(self, root: Path, wheelhouse: Path, work: Path) -> None:
        self.root = root
        self.wheelhouse = wheelhouse
        self.work = work
        self.python = root / BIN / ("python.exe" if sys.platform == "win32" else "python")
        self.script = root / BIN / "mofa-kernel"
        self.markers = work / "markers"
        self.markers.mkdir(parents=True, exist_ok=True)
        self.installed: set[str] = set()

    def wheel(self, distribution: str) -> Path:
        prefix = distribution.replace("-", "_") + "-"
        (path,) = [p for p in self.wheelhouse.glob("*.whl") if p.name.startswith(prefix)]
        return path

    def pip(self, *args: str | os.PathLike[str]) -> None:
        _run([self.python, "-m", "pip", "--disable-pip-version-check", "--quiet", *args])

    def install(self, *distributions: str) -> None:
        """pip-install these test distributions (already built) without resolving dependencies."""
        wanted = [d for d in distributions if d not in self.installed]
        if wanted:
            self.pip("install", "--no-deps", "--no-index", *map(self.wheel, wanted))
            self.installed.update(wanted)

    def uninstall(self, *distributions: str) -> None:
        present = [d for d in distributions if d in self.installed]
        if present:
            self.pip("uninstall", "--yes", *present)
            self.installed.difference_update(present)

    def environ(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MOFA_", "PYTHON"))}
        env.pop("VIRTUAL_ENV", None)
        if "MOFA_CACHE_DIR" in os.environ:  # the suite's private cache, never ~/.cache
            env["MOFA_CACHE_DIR"] = os.environ["MOFA_CACHE_DIR"]
        env["MKT_MARKER_DIR"] = str(self.markers)
        env.update(extra or {})
        return env

    def cli(
        self, *args: str, env: Mapping[str, str] | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run the virtualenv's ``mofa-kernel`` script in a clean working directory."""
        return subprocess.run(
            [str(self.script), *args],
            capture_output=True,
            text=True,
            cwd=self.work,
            env=self.environ(env),
            timeout=timeout,
            check=False,
        )

    def clear_markers(self) -> None:
        for marker in self.markers.iterdir():
            marker.unlink()

    def imported(self) -> set[str]:
        """Which marker-writing plugin modules have been imported since the last clear."""
        return {m.name.removesuffix(".imported") for m in self.markers.iterdir()}


def make_kernel_venv(base: Path) -> KernelVenv:
    """Build every wheel in one pip call, create the virtualenv, install the kernel and plugins."""
    wheelhouse = base / "wheelhouse"
    projects = _distributions(base / "dists")
    _build_wheels([ROOT, HELLO, *projects.values()], wheelhouse)
    env_dir = base / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    kernel = KernelVenv(env_dir, wheelhouse, base / "work")
    # The kernel comes with its real dependencies (from the index or pip's cache).
    kernel.pip("install", kernel.wheel("mofa-kernel"))
    kernel.install(*GOOD, *TROUBLED)
    return kernel
