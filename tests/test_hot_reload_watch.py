"""Hot reload driven by the watchers: strategies, attempts and cooldown, installs, traps.

Real files are edited, renamed, replaced and installed while the manager
runs; the tests wait on the event stream. The only sleeps are the pauses of
the writers themselves (a writer that saves every 20 ms must wait 20 ms).
"""

from __future__ import annotations

import asyncio
import importlib
import os
import shutil
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from _fakesite import FakeSite, fake_site
from _hotcode import Code, Events, code_fixture, is_, plugin_source, reload_events
from mofa_kernel import (
    HotReloadConfig,
    PluginEvent,
    PluginManager,
    PluginState,
    ReloadEvent,
    ReloadStrategy,
)
from mofa_kernel._reload import RESTART_REQUIRED, STALE
from mofa_kernel._reload._watch import keep_path

IMMEDIATE = HotReloadConfig(strategy=ReloadStrategy.IMMEDIATE, reload_cooldown=0.2)


@pytest.fixture
def code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Code]:
    yield from code_fixture(tmp_path, monkeypatch)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSite]:
    yield from fake_site(tmp_path, monkeypatch)


async def start_plugin(
    manager: PluginManager, code: Code, plugin_id: str = "hot", **steps: str
) -> Path:
    name = code.package({"__init__.py": plugin_source(plugin_id, "v1", **steps)})
    manager.register(importlib.import_module(name).Plugin(), timeout=10.0)
    assert (await manager.start_all()).ok
    return code.root / name / "__init__.py"


# -- strategies ------------------------------------------------------------------------------


async def test_rapid_saves_give_one_reload_with_the_final_content(code: Code) -> None:
    config = HotReloadConfig(strategy=ReloadStrategy.debounced(0.4))
    async with PluginManager(hot_reload=config) as manager:
        file = await start_plugin(manager, code)
        events = Events(manager)
        async with manager.hot_reloading():
            for number in range(2, 12):
                code.write(file, plugin_source("hot", f"v{number}"))
                await asyncio.sleep(0.02)
            first = await events.reload("hot")
            assert await manager.execute("hot", "x") == "v11:x:1"
            code.write(file, plugin_source("hot", "v12"))
            second = await events.until(is_(ReloadEvent.ReloadCompleted, "hot"))
        assert reload_events(first).count("ReloadStarted") == 1
        assert reload_events(second).count("ReloadStarted") == 1
        assert await manager.execute("hot", "y") == "v12:y:2"


async def test_a_writer_that_never_stops_still_gets_a_reload(code: Code) -> None:
    config = HotReloadConfig(strategy=ReloadStrategy.debounced(0.2))  # at most 5 x 0.2 s
    async with PluginManager(hot_reload=config) as manager:
        file = await start_plugin(manager, code)
        events = Events(manager)
        stop = asyncio.Event()

        async def writer() -> int:
            number = 1
            while not stop.is_set():
                number += 1
                code.write(file, plugin_source("hot", f"v{number}"))
                await asyncio.sleep(0.05)
            return number

        async with manager.hot_reloading():
            writing = asyncio.ensure_future(writer())
            seen = await events.reload("hot", timeout=5.0)
            still_writing = not writing.done()
            stop.set()
            await writing
        assert still_writing
        assert seen[-1].success  # type: ignore[union-attr]


async def test_manual_strategy_marks_the_plugin_stale_until_asked(code: Code) -> None:
    async with PluginManager(hot_reload=HotReloadConfig(strategy=ReloadStrategy.MANUAL)) as manager:
        file = await start_plugin(manager, code)
        events = Events(manager)
        async with manager.hot_reloading() as reloader:
            code.write(file, plugin_source("hot", "v2"))
            seen = await events.until(is_(PluginEvent.Custom, "hot", event_type=STALE))
            assert reload_events(seen) == []
            assert seen[-1].data == os.fsencode(file)  # type: ignore[union-attr]
            assert reloader.stale() == ["hot"]
            assert await manager.execute("hot", "a") == "v1:a:1"
            assert await manager.reload("hot")
            assert reloader.stale() == []
        assert await manager.execute("hot", "b") == "v2:b:2"


ON_IDLE = HotReloadConfig(strategy=ReloadStrategy.ON_IDLE)


async def test_on_idle_waits_for_the_calls_in_flight(code: Code) -> None:
    gate_module = code.package({"__init__.py": "import asyncio\nGO = asyncio.Event()\n"})
    gates = importlib.import_module(gate_module)
    header = f"from mofa_kernel import PluginEvent\nimport {gates.__name__} as gates"
    execute = (
        "if input == 'slow': await self.context.emit_event("
        "PluginEvent.Custom(plugin_id='hot', event_type='entered')); await gates.GO.wait()"
    )
    async with PluginManager(hot_reload=ON_IDLE) as manager:
        file = await start_plugin(manager, code, header=header, execute=execute)
        events = Events(manager)
        order: list[str] = []
        manager.add_listener(
            lambda e: order.append("reload") if isinstance(e, ReloadEvent.ReloadStarted) else None
        )
        async with manager.hot_reloading():
            call = asyncio.ensure_future(manager.execute("hot", "slow"))
            call.add_done_callback(lambda _: order.append("call returned"))
            await events.until(is_(PluginEvent.Custom, "hot", event_type="entered"))
            code.write(file, plugin_source("hot", "v2", header=header, execute=execute))
            # the change is seen, and waits: nothing reloads while the call runs
            gates.GO.set()
            assert await call == "v1:slow:1"
            await events.reload("hot")
        assert order == ["call returned", "reload"]
        assert await manager.execute("hot", "x") == "v2:x:2"


async def test_a_save_during_a_reload_is_applied_after_it(code: Code) -> None:
    gate_module = code.package({"__init__.py": "import asyncio\nGO = asyncio.Event()\n"})
    gates = importlib.import_module(gate_module)
    header = f"from mofa_kernel import PluginEvent\nimport {gates.__name__} as gates"
    hold = (
        "await ctx.emit_event(PluginEvent.Custom(plugin_id='hot', event_type='loading')); "
        "await gates.GO.wait()"
    )
    async with PluginManager(hot_reload=IMMEDIATE) as manager:
        file = await start_plugin(manager, code)
        events = Events(manager)
        async with manager.hot_reloading():
            code.write(file, plugin_source("hot", "v2", header=header, load=hold))
            await events.until(is_(PluginEvent.Custom, "hot", event_type="loading"))
            # v2 is imported and its load is waiting: save v3 now, then let v2 finish.
            code.write(file, plugin_source("hot", "v3"))
            gates.GO.set()
            first = await events.until(is_(ReloadEvent.ReloadCompleted, "hot"))
            assert await manager.execute("hot", "a") in ("v2:a:1", "v3:a:1")
            second = await events.until(is_(ReloadEvent.ReloadCompleted, "hot"))
        assert first[-1].success  # type: ignore[union-attr]
        assert second[-1].success  # type: ignore[union-attr]
        assert await manager.execute("hot", "b") == "v3:b:2"


# -- attempts and cooldown -------------------------------------------------------------------


async def test_transient_failures_are_retried_after_the_cooldown_up_to_the_limit(
    code: Code, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOT_BLOCKED", "1")
    config = HotReloadConfig(
        strategy=ReloadStrategy.IMMEDIATE, max_reload_attempts=3, reload_cooldown=0.3
    )
    blocked = "if os.environ.get('HOT_BLOCKED'): raise RuntimeError('blocked')"
    async with PluginManager(hot_reload=config) as manager:
        file = await start_plugin(manager, code)
        events = Events(manager)
        loop = asyncio.get_running_loop()
        times: list[float] = []  # when the kernel emitted each failure (a listener runs then)

        def stamp(event: object) -> None:
            if isinstance(event, ReloadEvent.ReloadFailed):
                times.append(loop.time())

        manager.add_listener(stamp)
        async with manager.hot_reloading():
            code.write(file, plugin_source("hot", "v2", header="import os", start=blocked))
            attempts = []
            for _ in range(3):
                seen = await events.until(is_(ReloadEvent.ReloadFailed, "hot"))
                attempts.append(seen[-1].attempt)  # type: ignore[union-attr]
            assert attempts == [1, 2, 3]
            assert times[1] - times[0] >= 0.25
            assert times[2] - times[1] >= 0.25
            # These bytes have had their attempts; new bytes start again at attempt 1.
            code.write(file, plugin_source("hot", "v3", header="import os", start=blocked))
            seen = await events.until(is_(ReloadEvent.ReloadFailed, "hot"))
            assert reload_events(seen).count("ReloadStarted") == 1  # v3's: no 4th attempt at v2
            assert seen[-1].attempt == 1  # type: ignore[union-attr]
            monkeypatch.delenv("HOT_BLOCKED")
            seen = await events.until(is_(ReloadEvent.ReloadCompleted, "hot", success=True))
            assert [e.attempt for e in seen if isinstance(e, ReloadEvent.ReloadFailed)] == []
        assert await manager.execute("hot", "x") == "v3:x:1"


async def test_a_syntax_error_is_not_retried_and_a_fix_is_not_delayed(code: Code) -> None:
    # A cooldown far longer than events.until waits: a fix delayed by it fails the test.
    config = HotReloadConfig(strategy=ReloadStrategy.IMMEDIATE, reload_cooldown=3600.0)
    async with PluginManager(hot_reload=config) as manager:
        file = await start_plugin(manager, code)
        events = Events(manager)
        async with manager.hot_reloading():
            code.write(file, "def broken(:\n")
            failed = await events.until(is_(ReloadEvent.ReloadCompleted, "hot"))
            assert [e.attempt for e in failed if isinstance(e, ReloadEvent.ReloadFailed)] == [1]
            os.utime(file)  # the same broken bytes, touched: no new attempt
            code.write(file, plugin_source("hot", "v2"))
            seen = await events.until(is_(ReloadEvent.ReloadCompleted, "hot"))
        assert reload_events(seen) == [
            "ReloadStarted",
            "StatePreserved",
            "StateRestored",
            "ReloadCompleted",
        ]
        assert await manager.execute("hot", "x") == "v2:x:1"


async def test_no_automatic_attempt_at_all_with_zero_attempts(code: Code) -> None:
    config = HotReloadConfig(strategy=ReloadStrategy.IMMEDIATE, max_reload_attempts=0)
    async with PluginManager(hot_reload=config) as manager:
        file = await start_plugin(manager, code)
        events = Events(manager)
        async with manager.hot_reloading():
            code.write(file, plugin_source("hot", "v2"))
            assert await manager.reload("hot")  # a request is always carried out
            seen = events.pending()
        assert reload_events(seen).count("ReloadStarted") == 1


# -- the traps: renames, replaced folders, .venv, compiled extensions ------------------------


@pytest.mark.parametrize("layout", ["package", "module"])
async def test_a_rename_save_is_seen(code: Code, layout: str) -> None:
    async with PluginManager(hot_reload=IMMEDIATE) as manager:
        if layout == "package":
            file = await start_plugin(manager, code)
        else:
            file = code.root / "hot_single_module.py"
            code.write(file, plugin_source("hot", "v1"))
            manager.register(importlib.import_module(file.stem).Plugin())
            await manager.start_all()
        events = Events(manager)
        async with manager.hot_reloading():
            for version in ("v2", "v3"):
                temporary = file.with_name(f".{file.name}.swp")
                code.write(temporary, plugin_source("hot", version))
                os.replace(temporary, file)
                seen = await events.reload("hot")
                assert seen[-1].success  # type: ignore[union-attr]
                count = 1 if version == "v2" else 2
                assert await manager.execute("hot", version) == f"{version}:{version}:{count}"


async def test_a_package_folder_replaced_whole_is_watched_again(code: Code) -> None:
    async with PluginManager(hot_reload=IMMEDIATE) as manager:
        file = await start_plugin(manager, code)
        folder = file.parent
        events = Events(manager)
        async with manager.hot_reloading():
            # As pip does: the old folder moves away, a new one takes its place.
            shutil.move(folder, folder.with_name("stash"))
            code.write(file, plugin_source("hot", "v2"))
            seen = await events.reload("hot")
            assert seen[-1].success  # type: ignore[union-attr]
            code.write(file, plugin_source("hot", "v3"))  # seen only if re-armed
            seen = await events.reload("hot")
            assert seen[-1].success  # type: ignore[union-attr]
        assert await manager.execute("hot", "x") == "v3:x:1"


def test_the_filter_keeps_venv_paths_and_drops_bytecode_and_editor_files() -> None:
    assert keep_path(1, "/work/.venv/lib/python3.11/site-packages/plug/__init__.py")
    assert not keep_path(1, "/p/plug/__pycache__/mod.cpython-311.pyc")
    assert not keep_path(1, "/p/plug/.mod.py.swp")
    assert not keep_path(1, "/p/plug/mod.py~")
    assert not keep_path(1, "/p/.git/index")


async def test_a_plugin_inside_a_venv_folder_is_reloaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / ".venv" / "lib" / "site-packages"
    root.mkdir(parents=True)
    monkeypatch.syspath_prepend(str(root))
    code = Code(root)
    try:
        async with PluginManager(hot_reload=IMMEDIATE) as manager:
            file = await start_plugin(manager, code)
            events = Events(manager)
            async with manager.hot_reloading():
                code.write(file, plugin_source("hot", "v2"))
                seen = await events.reload("hot")
            assert seen[-1].success  # type: ignore[union-attr]
    finally:
        code.forget()


def _an_extension_module() -> Path:
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    for name in ("_json", "_bisect", "_random", "_heapq", "_csv"):
        module = importlib.import_module(name)
        file = getattr(module, "__file__", None)
        if file and file.endswith(suffix):
            return Path(file)
    pytest.skip("this interpreter has its extension modules built in")


async def test_a_changed_compiled_extension_asks_for_a_restart(code: Code) -> None:
    extension = _an_extension_module()
    async with PluginManager(hot_reload=IMMEDIATE) as manager:
        file = await start_plugin(manager, code)
        copy = file.parent / extension.name
        shutil.copy2(extension, copy)
        importlib.import_module(f"{file.parent.name}.{extension.name.split('.')[0]}")
        events = Events(manager)
        async with manager.hot_reloading():
            with copy.open("ab") as handle:
                handle.write(b"\0")
            seen = await events.until(is_(PluginEvent.Custom, "hot", event_type=RESTART_REQUIRED))
        assert reload_events(seen) == []
        assert seen[-1].data == os.fsencode(copy)  # type: ignore[union-attr]
        assert await manager.execute("hot", "x") == "v1:x:1"


async def test_a_changed_data_file_refreshes_the_plugin(code: Code) -> None:
    async with PluginManager(hot_reload=IMMEDIATE) as manager:
        file = await start_plugin(manager, code)
        events = Events(manager)
        async with manager.hot_reloading():
            code.write(file.parent / "greeting.txt", "hello")
            seen = await events.reload("hot")
        assert reload_events(seen) == ["ReloadStarted", "ReloadCompleted"]
        assert manager.shared_state.get("log")[-1] == "v1:refresh"


async def test_a_plugin_registered_later_is_watched_once_loaded(code: Code) -> None:
    async with PluginManager(hot_reload=IMMEDIATE) as manager:
        events = Events(manager)
        async with manager.hot_reloading():
            file = await start_plugin(manager, code, "late")
            await events.until(is_(PluginEvent.PluginLoaded, "late"))
            code.write(file, plugin_source("late", "v2"))
            seen = await events.reload("late")
        assert seen[-1].success  # type: ignore[union-attr]


# -- installed plugins: edits, installs, upgrades, uninstalls --------------------------------

ENTRY = "hot_dist_pkg"


def _install(site: FakeSite, version: str, code_version: str, plugin_id: str = "dist") -> Path:
    return site.add(
        "hot-dist",
        version,
        plugins={plugin_id: f"{ENTRY}:Plugin"},
        files={f"{ENTRY}/__init__.py": plugin_source(plugin_id, code_version)},
    )


def _version(manager: PluginManager, plugin_id: str) -> str | None:
    source = manager.record(plugin_id).source
    return None if source is None else source.distribution_version


async def test_install_upgrade_and_uninstall_while_running(
    site: FakeSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOFA_PLUGINS", "dist")
    async with PluginManager(hot_reload=IMMEDIATE) as manager:
        manager.discover()
        events = Events(manager)
        async with manager.hot_reloading(watch_installs=True):
            dist_info = _install(site, "1.0", "v1")
            seen = await events.until(is_(ReloadEvent.PluginDiscovered))
            assert seen[-1].path == site.root / ENTRY / "__init__.py"  # type: ignore[union-attr]
            await events.until(is_(PluginEvent.StateChanged, "dist", new_state=PluginState.RUNNING))
            assert await manager.execute("dist", "a") == "v1:a:1"
            # An upgrade: the distribution's version and code change together.
            shutil.rmtree(dist_info)
            shutil.rmtree(site.root / ENTRY)
            _install(site, "2.0", "v2")
            seen = await events.reload("dist")
            # The files are written one by one; a busy machine can spread them out enough for
            # the new code to be seen (and reloaded) before the new metadata. The upgrade's
            # own reload then follows: wait for it (events.reload fails if none comes).
            while _version(manager, "dist") != "2.0":
                seen = await events.reload("dist")
            assert reload_events(seen) == [
                "ReloadStarted",
                "StatePreserved",
                "StateRestored",
                "ReloadCompleted",
            ]
            source = manager.record("dist").source
            assert source is not None
            assert source.distribution_version == "2.0"
            assert await manager.execute("dist", "b") == "v2:b:2"
            # An uninstall.
            shutil.rmtree(site.root / "hot_dist-2.0.dist-info")
            shutil.rmtree(site.root / ENTRY)
            seen = await events.until(is_(ReloadEvent.PluginRemoved, "dist"))
        assert "dist" not in manager.plugin_ids()
        assert ENTRY not in sys.modules
        assert manager.shared_state.get("log")[-2:] == ["v2:stop", "v2:unload"]


async def test_an_installed_plugin_broken_at_startup_comes_up_once_fixed(site: FakeSite) -> None:
    site.add(
        "hot-broken",
        plugins={"fixme": "hot_broken_pkg:Plugin"},
        files={"hot_broken_pkg/__init__.py": "def broken(:\n"},
    )
    file = site.root / "hot_broken_pkg" / "__init__.py"
    async with PluginManager(hot_reload=IMMEDIATE) as manager:
        manager.discover()
        assert manager.record("fixme").status == "failed"
        events = Events(manager)
        async with manager.hot_reloading():
            Code.write(file, plugin_source("fixme", "v1"))
            seen = await events.reload("fixme")
        assert seen[-1].success  # type: ignore[union-attr]
        assert manager.state("fixme") == PluginState.RUNNING
        assert await manager.execute("fixme", "x") == "v1:x:1"


def test_watch_installs_defaults_to_whether_plugins_were_discovered() -> None:
    manager: Any = PluginManager()
    assert manager.reloader.running is False
    assert manager.reloader.watched_paths() == ()
