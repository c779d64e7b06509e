"""Hot reload of isolated plugins: a new worker imports the new code, the old one keeps serving
until the swap, and every failure leaves the old worker serving.

The plugin is a package in a folder on ``sys.path`` (see ``_hotcode``), edited
on disk. Its worker answers ``pid`` with its process id and logs each
version's load into the host's shared state (``pid:VERSION``), so a test can
name the worker of a version that never served. Waits are on the event
stream, never on the clock.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from _fakesite import fake_site
from _hotcode import Code, Events, code_fixture, is_, reload_events
from _isolated import running
from mofa_kernel import (
    HotReloadConfig,
    PluginEvent,
    PluginExecutionError,
    PluginLifecycleError,
    PluginLoadError,
    PluginManager,
    PluginState,
    PluginTimeoutError,
    ReloadEvent,
    ReloadStrategy,
)
from mofa_kernel._config import KernelSettings, PluginSection
from mofa_kernel._isolation import IsolatedPlugin, WorkerSpec

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc; pidfds")

IMMEDIATE = HotReloadConfig(strategy=ReloadStrategy.IMMEDIATE, reload_cooldown=0.2)

SOURCE = """\
import asyncio
import os
from pathlib import Path

from mofa_kernel import AgentPlugin, HotReloadable, PluginEvent, PluginMetadata, PluginType
{header}
VERSION = {version!r}


class Plugin(AgentPlugin, HotReloadable):
    metadata = PluginMetadata("iso", "Iso", PluginType.TOOL)

    def __init__(self):
        self.count = 0

    async def load(self, ctx):
        self.context = ctx
        await ctx.set_state("pid:" + VERSION, os.getpid())
        {load}

    async def start(self):
        {start}

    async def save_state(self):
        return {{"count": self.count}}

    async def restore_state(self, state):
        self.count = state["count"]

    async def execute(self, input):
        self.count += 1
        if input == "pid":
            return str(os.getpid())
        if input == "exit":
            os._exit(5)
        if input.startswith("gate "):
            await self.context.emit_event(PluginEvent.Custom(plugin_id="iso", event_type="entered"))
            opened = await asyncio.to_thread(Path(input[5:]).read_text)
            if opened == "exit":
                os._exit(6)
        return VERSION + ":" + input + ":" + str(self.count)
"""


def source(version: str, *, header: str = "", load: str = "pass", start: str = "pass") -> str:
    return SOURCE.format(version=version, header=header, load=load, start=start)


@pytest.fixture
def code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Code]:
    yield from code_fixture(tmp_path, monkeypatch)


class Kernel:
    """A manager serving the isolated plugin ``iso``, with its event stream."""

    def __init__(self, manager: PluginManager, file: Path, package: str) -> None:
        self.manager = manager
        self.file = file
        self.package = package
        self.events = Events(manager)

    async def pid(self) -> int:
        return int(await self.manager.execute("iso", "pid"))

    def worker_of(self, version: str) -> int:
        pid = self.manager.shared_state.get("pid:" + version)
        assert isinstance(pid, int), f"no worker of {version} was loaded"
        return pid

    def write(self, text: str) -> None:
        Code.write(self.file, text)


@pytest.fixture
async def make_kernel(code: Code) -> AsyncIterator[Callable[..., Any]]:
    managers: list[PluginManager] = []

    async def make(
        *, hot_reload: HotReloadConfig | None = None, timeout: float = 10.0, max_restarts: int = 0
    ) -> Kernel:
        package = code.package({"__init__.py": source("v1")})
        policy = PluginSection(max_restarts=max_restarts, restart_window=3600.0)
        settings = KernelSettings(plugins={"iso": policy})
        manager = PluginManager(timeout=timeout, settings=settings, hot_reload=hot_reload)
        managers.append(manager)
        proxy = await IsolatedPlugin.spawn(WorkerSpec("iso", f"{package}:Plugin", grace=0.5))
        manager.register(proxy, timeout=timeout)
        report = await manager.start_all()
        assert report.ok, report.errors()
        return Kernel(manager, code.root / package / "__init__.py", package)

    yield make
    for manager in managers:
        await manager.shutdown()


# -- success -----------------------------------------------------------------------------------


async def test_an_edit_starts_a_new_worker_that_serves_the_new_code_with_the_state(
    make_kernel: Callable[..., Any],
) -> None:
    kernel = await make_kernel(hot_reload=IMMEDIATE)
    manager = kernel.manager
    old = await kernel.pid()
    assert await manager.execute("iso", "a") == "v1:a:2"
    async with manager.hot_reloading():
        kernel.write(source("v2"))
        seen = await kernel.events.reload("iso")
    assert reload_events(seen) == [
        "ReloadStarted",
        "StatePreserved",
        "StateRestored",
        "ReloadCompleted",
    ]
    assert isinstance(seen[-1], ReloadEvent.ReloadCompleted)
    assert seen[-1].success
    new = await kernel.pid()
    assert new != old
    assert new == kernel.worker_of("v2")
    assert await manager.execute("iso", "b") == "v2:b:4"  # the count came across
    assert not running(old)  # retired: stopped, unloaded, its process group ended
    assert manager.state("iso") == PluginState.RUNNING
    assert kernel.package not in sys.modules  # the host never imported either version


async def test_a_crash_of_the_new_worker_is_restarted_and_a_reload_is_no_crash(
    make_kernel: Callable[..., Any],
) -> None:
    kernel = await make_kernel(max_restarts=1)
    manager = kernel.manager
    kernel.write(source("v2"))
    assert await manager.reload("iso") is True
    kernel.write(source("v3"))
    assert await manager.reload("iso") is True
    crashed = await kernel.pid()
    with pytest.raises(PluginExecutionError, match="worker exited with code 5"):
        await manager.execute("iso", "exit")
    await kernel.events.until(is_(PluginEvent.PluginError, "iso"))
    await kernel.events.until(is_(PluginEvent.StateChanged, "iso", new_state=PluginState.RUNNING))
    await manager.settle()
    assert manager.state("iso") == PluginState.RUNNING
    assert (await manager.execute("iso", "x")).startswith("v3:x:")  # the new code came back
    assert await kernel.pid() not in (crashed, kernel.worker_of("v1"), kernel.worker_of("v2"))


async def test_calls_in_flight_finish_on_the_old_worker_before_it_ends(
    make_kernel: Callable[..., Any], tmp_path: Path
) -> None:
    kernel = await make_kernel()
    manager = kernel.manager
    old = await kernel.pid()
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    call = asyncio.ensure_future(manager.execute("iso", f"gate {gate}"))
    await kernel.events.until(is_(PluginEvent.Custom, "iso", event_type="entered"))
    kernel.write(source("v2"))
    reload = asyncio.ensure_future(manager.reload("iso"))
    await kernel.events.until(is_(ReloadEvent.ReloadCompleted, "iso", success=True))
    assert await manager.execute("iso", "fast") == "v2:fast:3"  # new calls: the new worker
    assert running(old)
    assert not reload.done()  # the old worker retires once its call has returned
    await asyncio.to_thread(gate.write_text, "go")
    assert await call == f"v1:gate {gate}:2"
    assert await reload is True
    assert not running(old)


async def test_the_old_worker_dying_while_it_retires_is_no_crash_of_the_plugin(
    make_kernel: Callable[..., Any], tmp_path: Path
) -> None:
    kernel = await make_kernel(max_restarts=3)
    manager = kernel.manager
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    call = asyncio.ensure_future(manager.execute("iso", f"gate {gate}"))
    await kernel.events.until(is_(PluginEvent.Custom, "iso", event_type="entered"))
    kernel.write(source("v2"))
    reload = asyncio.ensure_future(manager.reload("iso"))
    await kernel.events.until(is_(ReloadEvent.ReloadCompleted, "iso", success=True))
    await asyncio.to_thread(gate.write_text, "exit")
    with pytest.raises(PluginExecutionError, match="worker exited with code 6"):
        await call
    assert await reload is True
    await manager.settle()
    assert manager.state("iso") == PluginState.RUNNING
    assert await kernel.pid() == kernel.worker_of("v2")
    changes = [e for e in kernel.events.pending() if isinstance(e, PluginEvent.StateChanged)]
    assert changes == []  # no error state, no restart


async def test_a_changed_compiled_extension_is_loaded_by_a_new_worker(
    make_kernel: Callable[..., Any],
) -> None:
    kernel = await make_kernel()
    extension = kernel.file.with_name("_speedups.so")  # never imported: its change is enough
    extension.write_bytes(b"build 1")
    assert await kernel.manager.reload("iso", force=True) is True
    before = await kernel.pid()
    extension.write_bytes(b"build 2, longer")
    assert await kernel.manager.reload("iso") is True  # inline, this would ask for a restart
    assert await kernel.pid() != before


# -- rollback ----------------------------------------------------------------------------------


async def rolled_back(kernel: Kernel, old: int) -> list[str]:
    """Check the old worker serves, unchanged; return the reload's event names."""
    assert await kernel.pid() == old
    assert (await kernel.manager.execute("iso", "after")).startswith("v1:after:")
    assert kernel.manager.state("iso") == PluginState.RUNNING
    return reload_events(kernel.events.pending())


ROLLBACK = [
    "ReloadStarted",
    "ReloadFailed",
    "RollbackTriggered",
    "StateRestored",
    "ReloadCompleted",
]


async def test_a_syntax_error_is_caught_before_any_worker_starts(
    make_kernel: Callable[..., Any],
) -> None:
    kernel = await make_kernel()
    old = await kernel.pid()
    kernel.write(source("v2").replace("def start(self):", "def start(self)"))
    with pytest.raises(PluginLoadError, match=r"^reload of 'iso' failed: syntax check: "):
        await kernel.manager.reload("iso")
    assert await rolled_back(kernel, old) == ROLLBACK
    assert kernel.manager.shared_state.get("pid:v2") is None


async def test_an_import_error_in_the_new_worker_rolls_back(
    make_kernel: Callable[..., Any],
) -> None:
    kernel = await make_kernel()
    old = await kernel.pid()
    kernel.write(source("v2", header="raise RuntimeError('no import today')"))
    with pytest.raises(PluginLoadError, match=r"import: .*RuntimeError: no import today") as err:
        await kernel.manager.reload("iso")
    assert err.value.hook == "import"
    assert await rolled_back(kernel, old) == ROLLBACK


async def test_a_start_that_raises_ends_the_new_worker_and_rolls_back(
    make_kernel: Callable[..., Any],
) -> None:
    kernel = await make_kernel()
    old = await kernel.pid()
    kernel.write(source("v2", start="raise RuntimeError('cannot start')"))
    with pytest.raises(PluginLifecycleError) as err:
        await kernel.manager.reload("iso")
    assert str(err.value).startswith("reload of 'iso' failed: start: RuntimeError: cannot start (")
    assert err.value.hook == "start"
    events = kernel.events.pending()
    failed = next(e for e in events if isinstance(e, ReloadEvent.ReloadFailed))
    assert failed.error.startswith("start: RuntimeError: cannot start (__init__.py:")
    assert reload_events(events) == [
        "ReloadStarted",
        "StatePreserved",
        "ReloadFailed",
        "RollbackTriggered",
        "StateRestored",
        "ReloadCompleted",
    ]
    assert not running(kernel.worker_of("v2"))
    assert await rolled_back(kernel, old) == []


async def test_a_new_worker_that_dies_in_its_trial_is_ended_and_the_old_serves(
    make_kernel: Callable[..., Any],
) -> None:
    kernel = await make_kernel(max_restarts=3)
    old = await kernel.pid()
    kernel.write(source("v2", load="os._exit(3)"))
    with pytest.raises(PluginLoadError, match=r"load: .*worker exited with code 3"):
        await kernel.manager.reload("iso")
    await kernel.manager.settle()
    assert await rolled_back(kernel, old) == ROLLBACK
    assert not running(kernel.worker_of("v2"))


async def test_a_new_worker_past_its_deadline_in_its_trial_is_ended(
    make_kernel: Callable[..., Any],
) -> None:
    kernel = await make_kernel(timeout=1.0)
    old = await kernel.pid()
    kernel.write(source("v2", start="while True: pass"))
    with pytest.raises(PluginTimeoutError, match=r"start: timed out after 1s"):
        await kernel.manager.reload("iso")
    assert not running(kernel.worker_of("v2"))
    assert await rolled_back(kernel, old) == [*ROLLBACK[:1], "StatePreserved", *ROLLBACK[1:]]


async def test_an_import_that_never_ends_is_cut_off_at_the_deadline(
    make_kernel: Callable[..., Any],
) -> None:
    kernel = await make_kernel(timeout=1.0)
    old = await kernel.pid()
    kernel.write(source("v2", header="while True: pass"))
    with pytest.raises(PluginTimeoutError, match=r"import: timed out after 1s") as err:
        await kernel.manager.reload("iso")
    assert err.value.hook == "import"
    assert await rolled_back(kernel, old) == ROLLBACK


async def test_a_failed_edit_is_retried_by_the_watchers_and_a_fix_serves(
    make_kernel: Callable[..., Any],
) -> None:
    kernel = await make_kernel(hot_reload=IMMEDIATE)
    manager = kernel.manager
    old = await kernel.pid()
    async with manager.hot_reloading():
        kernel.write(source("v2", header="import no_such_module_here"))
        seen = await kernel.events.until(is_(ReloadEvent.RollbackTriggered, "iso"))
        failed = next(e for e in seen if isinstance(e, ReloadEvent.ReloadFailed))
        assert "No module named 'no_such_module_here'" in failed.error
        assert await kernel.pid() == old
        kernel.write(source("v3"))
        await kernel.events.until(is_(ReloadEvent.ReloadCompleted, "iso", success=True))
    assert (await manager.execute("iso", "x")).startswith("v3:x:")
    assert not running(old)
    assert importlib.util.find_spec(kernel.package) is not None  # still on disk, never imported
    assert kernel.package not in sys.modules


# -- plugins that are down ---------------------------------------------------------------------


async def test_a_plugin_left_down_after_a_crash_comes_back_with_the_new_code(
    make_kernel: Callable[..., Any],
) -> None:
    kernel = await make_kernel(max_restarts=0)
    manager = kernel.manager
    crashed = await kernel.pid()
    with pytest.raises(PluginExecutionError, match="worker exited with code 5"):
        await manager.execute("iso", "exit")
    await manager.settle()
    assert manager.state("iso").is_error
    kernel.write(source("v2"))
    assert await manager.reload("iso") is True
    assert manager.state("iso") == PluginState.RUNNING
    assert await manager.execute("iso", "x") == "v2:x:1"
    assert await kernel.pid() == kernel.worker_of("v2") != crashed


async def test_a_plugin_whose_worker_could_not_import_it_at_discovery_is_revived(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = next(fake_site(tmp_path, monkeypatch))
    broken = source("v1", header="raise RuntimeError('not yet')")
    site.add("iso-late", plugins={"iso": "isolate:Plugin"}, files={"isolate.py": broken})
    monkeypatch.setenv("MOFA_PLUGINS", "iso")
    settings = KernelSettings(plugins={"iso": PluginSection(isolation="process")})
    async with PluginManager(timeout=10.0, settings=settings) as manager:
        (record,) = manager.discover().records
        assert record.status == "failed"
        assert "RuntimeError: not yet" in (record.error or "")
        Code.write(site.root / "isolate.py", source("v2"))
        assert await manager.reload("iso") is True
        assert manager.state("iso") == PluginState.RUNNING
        worker = int(await manager.execute("iso", "pid"))
        assert worker == manager.shared_state.get("pid:v2") != os.getpid()
        assert "isolate" not in sys.modules
    assert not running(worker)


async def test_without_rollback_a_failure_ends_the_old_worker_and_a_fix_carries_its_state(
    make_kernel: Callable[..., Any],
) -> None:
    kernel = await make_kernel(hot_reload=HotReloadConfig(auto_rollback=False))
    manager = kernel.manager
    old = await kernel.pid()
    kernel.write(source("v2", start="raise RuntimeError('cannot start')"))
    with pytest.raises(PluginLifecycleError, match="start: RuntimeError: cannot start"):
        await manager.reload("iso")
    assert manager.state("iso").is_error
    assert not running(old)
    assert not running(kernel.worker_of("v2"))
    kernel.write(source("v3"))
    assert await manager.reload("iso") is True
    assert await manager.execute("iso", "x") == "v3:x:2"  # the count of v1's worker came across


def test_the_documentation_example(tmp_path: Path) -> None:
    """docs/isolation.md's hot-reload example prints exactly its .out file."""
    from _examples import check_example_output

    example = Path(__file__).resolve().parents[1] / "docs" / "examples" / "isolation"
    check_example_output(example / "hot_reload.py", tmp_path)
