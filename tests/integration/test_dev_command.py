"""``mofa-kernel dev --json`` in a real virtualenv while pip installs, upgrades, removes plugins.

One throwaway virtualenv for this module: mofa-kernel from its wheel, one
plugin installed editable (its source is edited while ``dev`` runs), and a
second plugin distribution built as two wheel versions, installed, upgraded
and uninstalled by pip while ``dev`` runs. The test reads ``dev``'s lines as
they are printed (each is flushed) and types commands on its stdin.
"""

from __future__ import annotations

import importlib.util
import json
import os
import queue
import select
import subprocess
import sys
import threading
import time
import venv
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
from _kernel_venv import write_distribution

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BIN = "Scripts" if sys.platform == "win32" else "bin"
WAIT = 90.0

PLUGIN = """\
import os

from mofa_kernel import AgentPlugin, HotReloadable, PluginMetadata, PluginType

VERSION = "{version}"


class Plugin(AgentPlugin, HotReloadable):
    metadata = PluginMetadata("{plugin_id}", "{plugin_id}", PluginType.TOOL)

    def __init__(self):
        self.calls = 0

    async def execute(self, input):
        self.calls += 1
        if input == "pid":
            return str(os.getpid())
        return VERSION + ":" + input + ":" + str(self.calls)

    async def save_state(self):
        return {{"calls": self.calls}}

    async def restore_state(self, state):
        self.calls = state["calls"]
"""


def write_project(folder: Path, name: str, plugin_id: str, version: str) -> Path:
    """A plugin distribution's source tree: ``src/<package>/__init__.py`` and pyproject.toml."""
    package = name.replace("-", "_")
    return write_distribution(
        folder,
        name,
        modules={package: PLUGIN.format(version=f"v{version[0]}", plugin_id=plugin_id)},
        plugins={plugin_id: f"{package}:Plugin"},
        version=version,
    )


def run(*argv: str | Path) -> None:
    result = subprocess.run([str(a) for a in argv], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.fail(f"{' '.join(map(str, argv))} failed:\n{result.stdout}\n{result.stderr}")


class DevVenv:
    """The virtualenv, its wheels and the editable plugin's source file."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.python = base / "venv" / BIN / "python"
        self.script = base / "venv" / BIN / "mofa-kernel"
        self.wheels = base / "wheels"
        self.edit_source = base / "edit" / "dev-edit" / "src" / "dev_edit" / "__init__.py"

    def wheel(self, prefix: str) -> Path:
        (found,) = self.wheels.glob(f"{prefix}*.whl")
        return found

    def pip(self, *args: str | Path) -> None:
        run(self.python, "-m", "pip", "--disable-pip-version-check", "--quiet", *args)


@pytest.fixture(scope="module")
def dev_venv(tmp_path_factory: pytest.TempPathFactory) -> DevVenv:
    base = tmp_path_factory.mktemp("dev-venv")
    env = DevVenv(base)
    edit = write_project(base / "edit", "dev-edit", "edit", "1.0")
    extra_one = write_project(base / "extra-1", "dev-extra", "extra", "1.0")
    extra_two = write_project(base / "extra-2", "dev-extra", "extra", "2.0")
    isolation = ["--no-build-isolation"] if importlib.util.find_spec("hatchling") else []
    for projects in ([ROOT, extra_one], [extra_two]):  # one version of a project per pip call
        run(sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
            "--no-deps", *isolation, "--wheel-dir", env.wheels, *projects)  # fmt: skip
    venv.EnvBuilder(with_pip=True, clear=True).create(base / "venv")
    # watchfiles (hot reload) and packaging until the project declares them; hatchling and
    # editables to install the editable plugin without fetching a build environment.
    tools = ("watchfiles", "packaging", "hatchling", "editables")
    env.pip("install", env.wheel("mofa_kernel-"), *tools)
    env.pip("install", "--no-deps", "--no-build-isolation", "--editable", edit)
    return env


class Session:
    """A running ``mofa-kernel dev --json``: its stdout lines, and its stdin."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, args=(process.stdout,), daemon=True).start()

    def _read(self, stream: IO[str] | None) -> None:
        assert stream is not None
        for line in stream:
            self.lines.put(line)
        self.lines.put(None)

    def send(self, command: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def until(self, tag: str, **fields: Any) -> dict[str, Any]:
        """The next object tagged ``tag`` with these field values (earlier lines are kept)."""
        deadline = time.monotonic() + WAIT
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"no {tag} {fields} within {WAIT}s; saw:\n{''.join(self.seen)}")
            if line is None:
                pytest.fail(f"dev ended before {tag} {fields}; saw:\n{''.join(self.seen)}")
            self.seen.append(line)
            ((found, values),) = json.loads(line).items()
            if found == tag and all(values.get(k) == v for k, v in fields.items()):
                return values  # type: ignore[no-any-return]


@pytest.fixture
def session(dev_venv: DevVenv, tmp_path: Path) -> Iterator[Session]:
    yield from dev_session(dev_venv, tmp_path, "")


@pytest.fixture
def isolated_session(dev_venv: DevVenv, tmp_path: Path) -> Iterator[Session]:
    dev_venv.pip("install", "--no-deps", dev_venv.wheel("dev_extra-1.0"))
    try:
        yield from dev_session(dev_venv, tmp_path, '[kernel]\nisolation = "process"\n')
    finally:
        dev_venv.pip("uninstall", "--yes", "dev-extra")


def dev_session(dev_venv: DevVenv, tmp_path: Path, config: str) -> Iterator[Session]:
    """``mofa-kernel dev --json`` with immediate reloads and ``config`` in its mofa.toml."""
    config += '[hot_reload]\nstrategy = "immediate"\n'
    (tmp_path / "mofa.toml").write_text(config, "utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOFA_", "PYTHON"))}
    env.pop("VIRTUAL_ENV", None)
    process = subprocess.Popen(
        [str(dev_venv.script), "dev", "--json"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    try:
        yield Session(process)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=WAIT)
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_dev_reloads_edits_and_follows_installs(dev_venv: DevVenv, session: Session) -> None:
    assert session.until("Ready") == {"plugins": ["edit"]}
    session.send("edit hello")
    assert session.until("ExecuteResult") == {"plugin_id": "edit", "output": "v1:hello:1"}

    # The editable plugin's source is edited: the new code serves, with the count.
    text = dev_venv.edit_source.read_text("utf-8")
    dev_venv.edit_source.write_text(text.replace('VERSION = "v1"', 'VERSION = "v2"'), "utf-8")
    completed = session.until("ReloadCompleted", plugin_id="edit")
    assert completed["success"] is True
    assert completed["path"] == str(dev_venv.edit_source)
    session.send("edit again")
    assert session.until("ExecuteResult")["output"] == "v2:again:2"

    # pip installs a plugin distribution while dev runs.
    dev_venv.pip("install", "--no-deps", dev_venv.wheel("dev_extra-1.0"))
    discovered = session.until("PluginDiscovered")
    assert discovered["path"].endswith(os.path.join("dev_extra", "__init__.py"))
    session.until("StateChanged", plugin_id="extra", new_state="Running")
    session.send("extra x")
    assert session.until("ExecuteResult") == {"plugin_id": "extra", "output": "v1:x:1"}

    # An upgrade is a reload, state included.
    dev_venv.pip("install", "--no-deps", dev_venv.wheel("dev_extra-2.0"))
    assert session.until("ReloadCompleted", plugin_id="extra", success=True)
    session.send("extra y")
    assert session.until("ExecuteResult") == {"plugin_id": "extra", "output": "v2:y:2"}

    # An uninstall takes the plugin away.
    dev_venv.pip("uninstall", "--yes", "dev-extra")
    session.until("PluginRemoved", plugin_id="extra")
    session.send("extra z")
    assert session.until("ExecuteError") == {"plugin_id": "extra", "error": "no plugin 'extra'"}

    session.send("quit")
    session.until("PluginUnloaded", plugin_id="edit")
    assert session.process.wait(timeout=WAIT) == 0
    assert session.process.stderr is not None
    assert session.process.stderr.read() == ""


def ends(pid: int) -> bool:
    """Whether process ``pid`` ends (or has ended) within :data:`WAIT`: awaited on a pidfd."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], WAIT)[0])
    finally:
        os.close(fd)


@pytest.mark.skipif(sys.platform != "linux", reason="workers need pidfds")
def test_dev_reloads_isolated_plugins_in_new_workers(
    dev_venv: DevVenv, isolated_session: Session
) -> None:
    session = isolated_session
    assert session.until("Ready") == {"plugins": ["edit", "extra"]}

    def worker(plugin_id: str) -> int:
        session.send(f"{plugin_id} pid")
        pid = int(session.until("ExecuteResult", plugin_id=plugin_id)["output"])
        assert pid != session.process.pid
        return pid

    # An edit of the editable plugin: a new worker imports it, the count comes across.
    first = worker("edit")
    original = dev_venv.edit_source.read_text("utf-8")
    version = next(line for line in original.splitlines() if line.startswith("VERSION = "))
    try:
        dev_venv.edit_source.write_text(original.replace(version, 'VERSION = "iso"'), "utf-8")
        assert session.until("ReloadCompleted", plugin_id="edit")["success"] is True
        second = worker("edit")
        session.send("edit x")
        assert session.until("ExecuteResult", plugin_id="edit")["output"] == "iso:x:3"
    finally:
        dev_venv.edit_source.write_text(original, "utf-8")
    assert second != first
    assert ends(first)  # the old worker retires once the swap is done

    # pip upgrades an isolated plugin's distribution: a reload in a new worker, with its state.
    before = worker("extra")
    dev_venv.pip("install", "--no-deps", dev_venv.wheel("dev_extra-2.0"))
    assert session.until("ReloadCompleted", plugin_id="extra", success=True)
    session.send("extra y")
    assert session.until("ExecuteResult", plugin_id="extra")["output"] == "v2:y:2"
    assert worker("extra") != before
    assert ends(before)

    session.send("quit")
    session.until("PluginUnloaded", plugin_id="extra")
    assert session.process.wait(timeout=WAIT) == 0
    assert session.process.stderr is not None
    assert session.process.stderr.read() == ""
