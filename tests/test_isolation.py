"""Process isolation with installed distributions: each plugin in a worker of its own.

The distributions are real dist-info folders on ``sys.path`` (see
``_fakesite``); the worker finds them through ``importlib.metadata`` like pip
installs. Every fault the issue lists is tried against a manager that also
serves an inline bystander, which must keep answering.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from _fakesite import FakeSite, fake_site
from _isolated import BROKEN, FAULTY, HOOKS, TYPED, running
from mofa_kernel import (
    AgentPlugin,
    KernelEvent,
    PluginConfig,
    PluginError,
    PluginEvent,
    PluginExecutionError,
    PluginLoadError,
    PluginManager,
    PluginMetadata,
    PluginState,
    PluginTimeoutError,
    PluginType,
)
from mofa_kernel._config import KernelSettings, PluginSection
from mofa_kernel._isolation import IsolatedPlugin, WorkerExit, WorkerSpec
from mofa_kernel._isolation._spawn import set_spare_worker

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc; pidfds")

#: Not a timing assertion: only how long a broken test may hang before it fails.
PATIENCE = 60.0


class Bystander(AgentPlugin):
    metadata = PluginMetadata(id="bystander", name="Bystander", plugin_type=PluginType.TOOL)

    async def execute(self, input: str) -> str:
        return f"bystander {input}"


def resident_mib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024
    raise AssertionError(f"no VmRSS for {pid}")


class Watcher:
    """Every event of a manager, and a way to await the first that matches."""

    def __init__(self, manager: PluginManager) -> None:
        self.events: list[KernelEvent] = []
        self._waiters: list[tuple[Callable[[KernelEvent], bool], asyncio.Future[KernelEvent]]] = []
        manager.add_listener(self._heard)

    def _heard(self, event: KernelEvent) -> None:
        self.events.append(event)
        for matches, future in self._waiters:
            if not future.done() and matches(event):
                future.set_result(event)

    async def first(self, matches: Callable[[KernelEvent], bool]) -> KernelEvent:
        for event in self.events:
            if matches(event):
                return event
        future = asyncio.get_running_loop().create_future()
        self._waiters.append((matches, future))
        return await asyncio.wait_for(future, PATIENCE)

    async def custom(self, name: str) -> KernelEvent:
        return await self.first(lambda e: getattr(e, "event_type", None) == name)

    async def running(self, plugin_id: str, times: int) -> None:
        """Await the plugin's ``times``-th entry into RUNNING since the manager began."""

        def entries() -> int:
            return sum(
                1
                for e in self.events
                if getattr(e, "plugin_id", None) == plugin_id
                and getattr(e, "new_state", None) == PluginState.RUNNING
            )

        if entries() >= times:
            return
        await self.first(lambda e: entries() >= times and e is self.events[-1])


def exits(proxy: IsolatedPlugin) -> asyncio.Queue[WorkerExit]:
    queue: asyncio.Queue[WorkerExit] = asyncio.Queue()
    proxy.on_worker_exit(queue.put_nowait)
    return queue


async def next_exit(queue: asyncio.Queue[WorkerExit]) -> WorkerExit:
    return await asyncio.wait_for(queue.get(), PATIENCE)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSite]:
    fake = next(fake_site(tmp_path, monkeypatch))
    fake.add("iso-faulty", plugins={"faulty": "isofaulty:Faulty"}, files={"isofaulty.py": FAULTY})
    fake.add("iso-hooks", plugins={"hooky": "isohooks"}, files={"isohooks.py": HOOKS})
    fake.add("iso-broken", plugins={"broken": "isobroken:Plugin"}, files={"isobroken.py": BROKEN})
    fake.add("iso-typed", plugins={"typed": "isotyped:Typed"}, files={"isotyped.py": TYPED})
    yield fake
    fake.forget_modules()


class Kernel:
    """A manager serving one isolated plugin beside the inline bystander."""

    def __init__(self, manager: PluginManager, proxy: IsolatedPlugin) -> None:
        self.manager = manager
        self.proxy = proxy
        self.watcher = Watcher(manager)
        self.exits = exits(proxy)

    async def execute(self, input: str) -> str:
        return await self.manager.execute(self.proxy.metadata.id, input)

    async def bystander_serves(self) -> None:
        assert await self.manager.execute("bystander", "still here") == "bystander still here"


@pytest.fixture
async def make_kernel(site: FakeSite) -> AsyncIterator[Callable[..., Any]]:
    managers: list[PluginManager] = []

    async def make(
        plugin_id: str = "faulty",
        entry_point: str = "isofaulty:Faulty",
        *,
        timeout: float = 10.0,
        settings: dict[str, Any] | None = None,
        memory_limit: int | None = None,
        max_restarts: int = 0,
        start: bool = True,
    ) -> Kernel:
        spec = WorkerSpec(plugin_id, entry_point, memory_limit=memory_limit, grace=0.5)
        proxy = await IsolatedPlugin.spawn(spec)
        policy = PluginSection(max_restarts=max_restarts, restart_window=3600.0)
        configured = KernelSettings(plugins={plugin_id: policy})
        manager = PluginManager(timeout=timeout, settings=configured)
        managers.append(manager)
        manager.register(Bystander())
        manager.register(proxy, config=PluginConfig(settings or {}), timeout=timeout)
        kernel = Kernel(manager, proxy)
        if start:
            await manager.load_all()
            await manager.start_all()
        return kernel

    yield make
    for manager in managers:
        await manager.shutdown()


# -- the same plugin, across the boundary ------------------------------------------------------


async def test_the_host_learns_metadata_from_the_worker_and_never_imports_the_plugin(
    make_kernel: Callable[..., Any],
) -> None:
    kernel = await make_kernel()
    assert kernel.proxy.metadata.version == "2.5"
    assert kernel.manager.state("faulty") == PluginState.RUNNING
    assert "isofaulty" not in sys.modules
    assert await kernel.execute("imported") == "isofaulty"
    worker = int(await kernel.execute("pid"))
    assert worker != os.getpid()
    assert worker == kernel.proxy.worker_pid


async def test_shared_state_and_events_cross_the_boundary(
    make_kernel: Callable[..., Any],
) -> None:
    kernel = await make_kernel()
    kernel.manager.shared_state.set("counter", 41)
    assert await kernel.execute("state") == "42"
    assert kernel.manager.shared_state.get("counter") == 42
    assert kernel.manager.shared_state.get("log") == ["visited"]
    kernel.manager.shared_state.set("log", ["host"])
    await kernel.execute("state")
    assert kernel.manager.shared_state.get("log") == ["host", "visited"]


async def test_a_hook_module_plugin_gets_its_config_and_observes_host_events(
    make_kernel: Callable[..., Any],
) -> None:
    kernel = await make_kernel("hooky", "isohooks", settings={"greeting": "hi"})
    assert await kernel.execute("setting") == "hi"
    seen = await kernel.execute("seen")
    assert "PluginLoaded:bystander" in seen.split()
    assert "StateChanged:hooky" in seen.split()


async def test_typed_settings_are_filled_in_the_worker(make_kernel: Callable[..., Any]) -> None:
    kernel = await make_kernel("typed", "isotyped:Typed", settings={"greeting": "Bonjour"})
    assert await kernel.execute("Ada") == "Bonjour, Ada"
    wrong = await make_kernel("typed", "isotyped:Typed", settings={"greting": "Hi"}, start=False)
    with pytest.raises(PluginError, match=r"plugins\.typed\.settings\.greting: unknown key"):
        await wrong.manager.load("typed")
    assert wrong.manager.state("typed").is_error


async def test_a_plugin_that_cannot_be_imported_fails_to_spawn(site: FakeSite) -> None:
    with pytest.raises(PluginLoadError, match="RuntimeError: this plugin cannot be imported"):
        await IsolatedPlugin.spawn(WorkerSpec("broken", "isobroken:Plugin"))


async def test_failures_read_as_they_would_inline(make_kernel: Callable[..., Any]) -> None:
    kernel = await make_kernel()
    with pytest.raises(PluginExecutionError, match="no thanks"):
        await kernel.execute("reject")
    assert kernel.manager.state("faulty") == PluginState.RUNNING
    with pytest.raises(PluginExecutionError) as raised:
        await kernel.execute("raise")
    assert str(raised.value).startswith("execute failed: ValueError: bad input (isofaulty.py:")
    assert kernel.manager.state("faulty").is_error


async def test_a_caught_sys_exit_fails_the_call_and_the_worker_lives_on(
    make_kernel: Callable[..., Any],
) -> None:
    kernel = await make_kernel()
    pid = kernel.proxy.worker_pid
    assert pid is not None
    with pytest.raises(PluginExecutionError, match=r"^execute failed: SystemExit: 4 \(isofaulty"):
        await kernel.execute("sys.exit")
    assert running(pid)
    await kernel.manager.unload("faulty")
    assert not running(pid)


async def test_health_stats_and_state_carried_from_one_worker_to_the_next(
    make_kernel: Callable[..., Any],
) -> None:
    kernel = await make_kernel()
    await kernel.execute("one")
    await kernel.execute("two")
    health = await kernel.manager.health_check()  # the plugin's own: is its state Running?
    assert health == {"bystander": True, "faulty": True}
    assert kernel.proxy.stats() == {"count": 2}
    await kernel.manager.pause("faulty")
    assert (await kernel.manager.health_check())["faulty"] is False
    await kernel.manager.resume("faulty")
    saved = await kernel.proxy.save_state()
    other = await make_kernel()
    await other.proxy.restore_state(saved)
    await other.execute("three")
    assert await other.proxy.save_state() == {"count": 3}


async def test_the_plugin_prints_to_the_hosts_stdout(
    make_kernel: Callable[..., Any], capfd: pytest.CaptureFixture[str]
) -> None:
    set_spare_worker(False)  # a spare would keep the stdout of the moment it started
    try:
        kernel = await make_kernel()
        assert await kernel.execute("print") == "printed"
        await kernel.manager.unload_all()
    finally:
        set_spare_worker(True)
    assert "printed by the isolated plugin" in capfd.readouterr().out


# -- deaths -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("input", "reason"),
    [("exit", "worker exited with code 1"), ("segv", "worker killed by SIGSEGV")],
)
async def test_a_dying_worker_costs_only_its_plugin(
    make_kernel: Callable[..., Any], input: str, reason: str
) -> None:
    kernel = await make_kernel()
    pid = kernel.proxy.worker_pid
    with pytest.raises(PluginExecutionError, match=f"plugin 'faulty': {reason}$"):
        await kernel.execute(input)
    assert str(await next_exit(kernel.exits)) == reason
    assert kernel.manager.state("faulty") == PluginState.error(reason)
    failure = await kernel.watcher.first(lambda e: getattr(e, "error", None) == reason)
    assert failure.plugin_id == "faulty"
    assert pid is not None
    assert not running(pid)
    await kernel.bystander_serves()
    with pytest.raises(PluginError, match="cannot execute"):
        await kernel.execute("again")


async def test_a_loop_that_never_yields_is_cut_off_at_its_deadline(
    make_kernel: Callable[..., Any],
) -> None:
    kernel = await make_kernel(timeout=1.0)
    pid = kernel.proxy.worker_pid
    call = asyncio.create_task(kernel.execute("spin"))
    await kernel.watcher.custom("spin")
    await kernel.bystander_serves()  # the host's loop is free while the worker spins
    with pytest.raises(PluginTimeoutError, match="execute timed out after 1s"):
        await call
    ended = await next_exit(kernel.exits)
    assert ended.cause == "deadline"
    assert str(ended) == "worker ended: execute overran its deadline (1s)"
    assert kernel.manager.state("faulty").is_error
    assert pid is not None
    assert not running(pid)
    await kernel.bystander_serves()


@pytest.mark.parametrize(
    ("hook", "before"),
    [
        ("load", []),
        ("init_plugin", ["load"]),
        ("start", ["load", "init_plugin"]),
        ("pause", ["load", "start"]),
        ("resume", ["load", "start", "pause"]),
        ("stop", ["load", "start"]),
        ("unload", ["load"]),
    ],
)
async def test_a_hang_in_a_lifecycle_hook_ends_the_worker(
    make_kernel: Callable[..., Any], hook: str, before: list[str]
) -> None:
    kernel = await make_kernel(timeout=1.0, settings={"hang": hook}, start=False)
    manager = kernel.manager
    await manager.load("bystander")
    await manager.start("bystander")
    for step in before:
        await getattr(manager, step)("faulty")
    pid = kernel.proxy.worker_pid
    with pytest.raises(PluginError, match=f"{hook} timed out after 1s"):
        await getattr(manager, hook)("faulty")
    ended = await next_exit(kernel.exits) if hook != "unload" else None
    if ended is not None:
        assert str(ended) == f"worker ended: {hook} overran its deadline (1s)"
    assert manager.state("faulty").is_error
    assert pid is not None
    assert not running(pid)
    await kernel.bystander_serves()


async def test_a_cancelled_call_is_cancelled_in_the_worker_which_lives_on(
    make_kernel: Callable[..., Any],
) -> None:
    kernel = await make_kernel()
    pid = kernel.proxy.worker_pid
    call = asyncio.create_task(kernel.execute("wait"))
    await kernel.watcher.custom("wait")
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert await kernel.execute("pid") == str(pid)


# -- memory -------------------------------------------------------------------------------------


async def test_memory_under_the_cap(make_kernel: Callable[..., Any]) -> None:
    kernel = await make_kernel(memory_limit=256)
    host_before = resident_mib(os.getpid())
    kept = await kernel.execute("hog-and-keep")  # the plugin catches MemoryError: it lives on
    assert kept.startswith("kept ")
    assert 128 < int(kept.split()[1]) < 256
    assert kernel.proxy.worker_pid is not None
    assert resident_mib(kernel.proxy.worker_pid) > 128  # the worker holds it...
    assert resident_mib(os.getpid()) - host_before < 64  # ...and the host does not
    with pytest.raises(PluginExecutionError, match=r"^execute failed: MemoryError"):
        await kernel.execute("hog")
    await kernel.bystander_serves()


async def test_a_worker_out_of_memory_says_so(make_kernel: Callable[..., Any]) -> None:
    kernel = await make_kernel(memory_limit=256)
    reason = "worker exceeded its memory limit (256 MiB)"
    kept = await kernel.execute("hog-and-keep")  # the plugin keeps all the memory it got
    assert kept.startswith("kept ")
    with pytest.raises(PluginExecutionError, match=re.escape(f"plugin 'faulty': {reason}")):
        await kernel.execute("y" * (4 << 20))  # no room left to read it
    assert str(await next_exit(kernel.exits)) == reason
    assert kernel.manager.state("faulty") == PluginState.error(reason)


# -- nothing left behind -----------------------------------------------------------------------


async def test_unload_ends_the_worker_its_threads_and_its_children(
    make_kernel: Callable[..., Any],
) -> None:
    kernel = await make_kernel()
    worker = kernel.proxy.worker_pid
    child = int(await kernel.execute("leak"))
    assert worker is not None
    assert running(worker)
    assert running(child)
    await kernel.manager.stop("faulty")
    await asyncio.wait_for(kernel.manager.unload("faulty"), PATIENCE)
    assert not running(worker)
    assert not running(child)
    assert kernel.proxy.worker_pid is None


async def test_a_crash_ends_what_the_worker_started(make_kernel: Callable[..., Any]) -> None:
    kernel = await make_kernel()
    child = int(await kernel.execute("leak"))
    with pytest.raises(PluginExecutionError):
        await kernel.execute("exit")
    await next_exit(kernel.exits)
    assert not running(child)


# -- restarts -----------------------------------------------------------------------------------


async def test_restarts_follow_the_policy_then_the_plugin_stays_down(
    make_kernel: Callable[..., Any],
) -> None:
    kernel = await make_kernel(max_restarts=2)
    manager, watcher = kernel.manager, kernel.watcher
    for crash in (1, 2):
        first = await kernel.execute("pid")
        before = len(watcher.events)
        with pytest.raises(PluginExecutionError):
            await kernel.execute("exit")
        await watcher.running("faulty", 1 + crash)
        assert await kernel.execute("pid") != first, f"crash {crash}: a new worker serves"
    states = [
        e.new_state
        for e in watcher.events[before:]
        if getattr(e, "plugin_id", None) == "faulty" and hasattr(e, "new_state")
    ]
    assert states == [
        PluginState.error("worker exited with code 1"),
        PluginState.UNLOADED,
        PluginState.LOADING,
        PluginState.LOADED,
        PluginState.RUNNING,
    ]
    with pytest.raises(PluginExecutionError):
        await kernel.execute("exit")
    for _ in range(3):
        await next_exit(kernel.exits)
    await manager.settle()  # a restart would be under way by now
    assert manager.state("faulty") == PluginState.error("worker exited with code 1")
    entries = [e for e in watcher.events if getattr(e, "new_state", None) == PluginState.RUNNING]
    assert len(entries) == 3 + 1  # the first start, two restarts... and the bystander's
    assert kernel.proxy.worker_pid is None


# -- configuration and the command line ---------------------------------------------------------


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    from mofa_kernel._cli import main

    code = main(list(argv))
    return code, json.loads(capsys.readouterr().out)


def test_list_and_info_show_the_isolation_and_info_asks_the_worker(
    site: FakeSite, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "mofa.toml"
    config.write_text(
        '[kernel]\nisolation = "process"\n[plugins.hooky]\nisolation = "inline"\n',
        encoding="utf-8",
    )
    code, rows = run_cli(capsys, "--config", str(config), "plugins", "list", "--json")
    assert code == 0
    assert {row["id"]: row["isolation"] for row in rows} == {
        "broken": "process",
        "faulty": "process",
        "hooky": "inline",
        "typed": "process",
    }
    code, info = run_cli(capsys, "--config", str(config), "plugins", "info", "faulty", "--json")
    assert code == 0
    assert info["isolation"] == "process"
    assert info["metadata"]["version"] == "2.5"
    assert "isofaulty" not in sys.modules  # learned from a worker, not imported here
    code, info = run_cli(capsys, "--config", str(config), "plugins", "info", "broken", "--json")
    assert code == 1
    assert "RuntimeError: this plugin cannot be imported" in info["error"]
    assert "isobroken" not in sys.modules


async def test_discovery_runs_process_plugins_in_workers_and_restarts_them(
    site: FakeSite, tmp_path: Path
) -> None:
    from mofa_kernel._config import load_settings

    config = tmp_path / "mofa.toml"
    config.write_text(
        '[kernel]\nisolation = "process"\ntimeout = 10.0\n'
        '[plugins.hooky]\nisolation = "inline"\n'
        "[plugins.faulty]\nmax_restarts = 1\n"
        "[plugins.broken]\nenabled = false\n",
        encoding="utf-8",
    )
    manager = PluginManager.from_settings(load_settings(config))
    watcher = Watcher(manager)
    try:
        report = manager.discover()
        assert {r.plugin_id: r.status for r in report.records}["faulty"] == "registered"
        assert "isofaulty" not in sys.modules
        await manager.start_all()
        assert int(await manager.execute("faulty", "pid")) != os.getpid()
        assert (await manager.execute("hooky", "x")).startswith(f"hook {os.getpid()} ")
        with pytest.raises(PluginExecutionError, match="worker exited with code 1"):
            await manager.execute("faulty", "exit")
        await watcher.running("faulty", 2)
        assert await manager.execute("faulty", "back") == "echo back"
    finally:
        await manager.shutdown()
    assert manager.state("faulty") == PluginState.UNLOADED


async def test_shutdown_ends_the_worker_of_a_plugin_never_started(
    site: FakeSite, tmp_path: Path
) -> None:
    from mofa_kernel._config import load_settings

    config = tmp_path / "mofa.toml"
    config.write_text(
        '[kernel]\nisolation = "process"\n[plugins.faulty]\nauto_start = false\n',
        encoding="utf-8",
    )
    manager = PluginManager.from_settings(load_settings(config))
    manager.discover()
    proxy = manager.get("faulty")
    assert isinstance(proxy, IsolatedPlugin)
    pid = proxy.worker_pid
    assert pid is not None
    assert running(pid)
    await manager.shutdown()
    assert not running(pid)


EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "isolation"


def test_the_documentation_example(tmp_path: Path) -> None:
    """docs/isolation.md's example, its distribution installed as metadata on the path."""
    from _examples import check_example_output

    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib

    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    dist_info = tmp_path / "site" / f"{project['name'].replace('-', '_')}-0.1.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: 0.1.0\n", encoding="utf-8"
    )
    points = project["entry-points"]["mofa.plugins"]
    (dist_info / "entry_points.txt").write_text(
        "[mofa.plugins]\n" + "".join(f"{k} = {v}\n" for k, v in points.items()), encoding="utf-8"
    )
    env = {
        "PYTHONPATH": os.pathsep.join([str(dist_info.parent), str(EXAMPLE)]),
        "MOFA_PLUGINS": ",".join(points),
    }
    check_example_output(EXAMPLE / "host.py", tmp_path, env)


async def test_a_reload_of_an_isolated_plugin_starts_a_new_worker_and_never_imports_it(
    make_kernel: Callable[..., Any],
) -> None:
    kernel = await make_kernel()
    old = int(await kernel.execute("pid"))
    assert await kernel.manager.reload("faulty", force=True) is True
    assert (await kernel.manager.stats())["faulty"] == {"count": 1}  # carried, as of its start
    new = int(await kernel.execute("pid"))
    assert new != old
    assert not running(old)
    assert "isofaulty" not in sys.modules
    assert await kernel.execute("still") == "echo still"
    await kernel.bystander_serves()


async def test_a_reloaded_module_of_hooks_observes_host_events_from_its_new_worker(
    make_kernel: Callable[..., Any],
) -> None:
    kernel = await make_kernel("hooky", "isohooks")
    old = (await kernel.execute("x")).split()[1]
    assert "PluginLoaded:bystander" in (await kernel.execute("seen")).split()
    assert await kernel.manager.reload("hooky", force=True) is True
    assert (await kernel.execute("x")).split()[1] != old
    kernel.manager.emit(PluginEvent.Custom(plugin_id="bystander", event_type="ping"))
    await kernel.manager.settle()
    seen = (await kernel.execute("seen")).split()
    assert "Custom:bystander" in seen
    assert "PluginLoaded:bystander" not in seen  # a new process: the old one's list is gone


HOST_THAT_DIES = """
import asyncio, os, signal, sys
from mofa_kernel import PluginContext
from mofa_kernel._isolation import IsolatedPlugin, WorkerSpec

async def main():
    proxy = await IsolatedPlugin.spawn(WorkerSpec("faulty", "isofaulty:Faulty"))
    await proxy.load(PluginContext())
    child = await proxy.execute("leak")
    print(proxy.worker_pid, child, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)

asyncio.run(main())
"""


def await_end(pid: int) -> None:
    """Block until process ``pid`` (not necessarily a child) has ended."""
    import select

    try:
        handle = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        assert select.select([handle], [], [], PATIENCE)[0], f"process {pid} still runs"
    finally:
        os.close(handle)


def test_workers_of_a_host_that_dies_end_with_everything_they_started(site: FakeSite) -> None:
    import subprocess

    host = subprocess.run(
        [sys.executable, "-c", HOST_THAT_DIES],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        timeout=PATIENCE,
        check=False,
    )
    assert host.returncode == -9, host.stderr
    worker, child = (int(pid) for pid in host.stdout.split())
    await_end(worker)
    await_end(child)
    assert not running(worker)
    assert not running(child)


SPINNER = """
import os
from mofa_kernel import AgentPlugin, PluginMetadata, PluginType

class Spinner(AgentPlugin):
    metadata = PluginMetadata(id="spinner", name="Spinner", plugin_type=PluginType.TOOL)

    async def execute(self, input):
        os.write(1, b"spinning\\n")
        while True:
            pass
"""

HOST_OF_A_SPINNER = """
import asyncio, sys
from mofa_kernel import PluginContext
from mofa_kernel._isolation import IsolatedPlugin, WorkerSpec

async def main():
    spec = WorkerSpec("spinner", "spinmod:Spinner", sys_path=(sys.argv[1], *sys.path))
    proxy = await IsolatedPlugin.spawn(spec)
    await proxy.load(PluginContext())
    print(proxy.worker_pid, flush=True)
    await proxy.execute("go")  # no deadline: it never returns

asyncio.run(main())
"""


def test_a_worker_whose_plugin_never_yields_ends_with_its_host(tmp_path: Path) -> None:
    """The worker cannot read its pipe's end while the plugin spins: it watches the host."""
    import subprocess

    (tmp_path / "spinmod.py").write_text(SPINNER, encoding="utf-8")
    host = subprocess.Popen(
        [sys.executable, "-c", HOST_OF_A_SPINNER, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert host.stdout is not None
    try:
        worker = int(host.stdout.readline())
        assert host.stdout.readline() == "spinning\n"  # printed by the worker, then it spins
    finally:
        host.kill()
        host.wait()
    await_end(worker)
    assert not running(worker)
    host.stdout.close()


class Dependent(AgentPlugin):
    """An inline plugin that needs the isolated one."""

    metadata = PluginMetadata(
        id="dependent", name="Dependent", plugin_type=PluginType.TOOL, dependencies=("faulty",)
    )

    async def execute(self, input: str) -> str:
        return f"dependent {input}"


async def test_dependents_stopped_by_a_crash_come_back_with_the_restart(
    make_kernel: Callable[..., Any],
) -> None:
    kernel = await make_kernel(max_restarts=1, start=False)
    manager, watcher = kernel.manager, kernel.watcher
    manager.register(Dependent())
    assert (await manager.start_all()).ok
    assert await manager.execute("dependent", "x") == "dependent x"
    with pytest.raises(PluginExecutionError):
        await kernel.execute("exit")
    await watcher.running("faulty", 2)
    await watcher.running("dependent", 2)  # stopped with the crash, started after the restart
    changes = [
        (e.old_state, e.new_state)
        for e in watcher.events
        if isinstance(e, PluginEvent.StateChanged) and e.plugin_id == "dependent"
    ]
    assert changes[-2:] == [
        (PluginState.RUNNING, PluginState.LOADED),  # stopped when the worker died
        (PluginState.LOADED, PluginState.RUNNING),  # started again after the restart
    ]
    assert await manager.execute("dependent", "y") == "dependent y"
    await kernel.bystander_serves()
