"""Hot reload, one transaction at a time: new code serves, or the old code never stopped.

Every case edits real files in a package on ``sys.path`` and reloads it,
through ``manager.reload`` or through the watchers with the Immediate
strategy. Waits are on the event stream, never on the clock.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import os
import sys
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from _hotcode import Code, Events, code_fixture, is_, plugin_source, reload_events
from mofa_kernel import (
    HotReloadConfig,
    InvalidStateError,
    PluginEvent,
    PluginInitError,
    PluginLifecycleError,
    PluginLoadError,
    PluginManager,
    PluginState,
    ReloadEvent,
    ReloadStrategy,
    hookimpl,
)

QUICK = os.environ.get("MOFA_TEST_QUICK") == "1"
IMMEDIATE = HotReloadConfig(strategy=ReloadStrategy.IMMEDIATE, reload_cooldown=0.2)
MANUAL = HotReloadConfig(strategy=ReloadStrategy.MANUAL)

GATES = """\
import asyncio

GATES = {}
TASKS = []
SEEN = []


def gate(name):
    return GATES.setdefault(name, asyncio.Event())
"""


@pytest.fixture
def code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Code]:
    yield from code_fixture(tmp_path, monkeypatch)


@pytest.fixture
def gates(code: Code) -> Any:
    """A module outside every plugin's code: events tests open, tasks plugins leave behind."""
    return importlib.import_module(code.package({"__init__.py": GATES}))


async def start_plugin(
    manager: PluginManager, code: Code, plugin_id: str = "hot", **steps: str
) -> tuple[str, Path]:
    """Write version v1 of a plugin package, register and start it; (package, its file)."""
    name = code.package({"__init__.py": plugin_source(plugin_id, "v1", **steps)})
    module = importlib.import_module(name)
    manager.register(module.Plugin(), timeout=10.0)
    report = await manager.start_all()
    assert report.ok, report.errors()
    return name, code.root / name / "__init__.py"


def line_of(text: str, needle: str) -> int:
    """The 1-based line of ``text`` that contains ``needle``."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def has_bytecode(file: Path) -> bool:
    return os.path.exists(importlib.util.cache_from_source(str(file)))


def log(manager: PluginManager) -> list[str]:
    entries: list[str] = manager.shared_state.get("log") or []
    return entries


# -- success ---------------------------------------------------------------------------------


async def test_an_edit_serves_new_code_and_carries_state(code: Code) -> None:
    async with PluginManager(hot_reload=IMMEDIATE) as manager:
        _, file = await start_plugin(manager, code)
        assert await manager.execute("hot", "a") == "v1:a:1"
        events = Events(manager)
        loop = asyncio.get_running_loop()
        async with manager.hot_reloading():
            began = loop.time()
            code.write(file, plugin_source("hot", "v2"))
            seen = await events.reload("hot")
            waited = loop.time() - began
            assert await manager.execute("hot", "b") == "v2:b:2"
        assert reload_events(seen) == [
            "ReloadStarted",
            "StatePreserved",
            "StateRestored",
            "ReloadCompleted",
        ]
        started, completed = seen[0], seen[-1]
        assert isinstance(started, ReloadEvent.ReloadStarted)
        assert started.path == file
        assert isinstance(completed, ReloadEvent.ReloadCompleted)
        assert completed.success is True
        assert 0.0 < completed.duration <= waited  # the reload itself, not the whole wait
        assert log(manager) == [
            *("v1:load", "v1:init", "v1:start"),
            *("v2:load", "v2:init", "v2:restore", "v2:start"),
            *("v1:stop", "v1:unload"),
        ]
        assert manager.state("hot") == PluginState.RUNNING


async def test_manual_reload_returns_true_and_unchanged_code_is_refreshed(code: Code) -> None:
    async with PluginManager() as manager:
        _, file = await start_plugin(manager, code)
        code.write(file, plugin_source("hot", "v2"))
        assert await manager.reload("hot") is True
        events = Events(manager)
        assert await manager.reload("hot") is False  # nothing changed: refresh() instead
        assert reload_events(events.pending()) == ["ReloadStarted", "ReloadCompleted"]
        assert log(manager)[-1] == "v2:refresh"
        assert await manager.reload("hot", force=True) is True
        assert log(manager)[-4:] == ["v2:restore", "v2:start", "v2:stop", "v2:unload"]


async def test_state_is_not_carried_when_preserve_state_is_off(code: Code) -> None:
    config = HotReloadConfig(preserve_state=False)
    async with PluginManager(hot_reload=config) as manager:
        _, file = await start_plugin(manager, code)
        await manager.execute("hot", "a")
        events = Events(manager)
        code.write(file, plugin_source("hot", "v2"))
        assert await manager.reload("hot")
        assert reload_events(events.pending()) == ["ReloadStarted", "ReloadCompleted"]
        assert await manager.execute("hot", "b") == "v2:b:1"


async def test_a_paused_plugin_comes_back_paused_and_a_loaded_one_loaded(code: Code) -> None:
    async with PluginManager() as manager:
        _, file = await start_plugin(manager, code)
        await manager.pause("hot")
        code.write(file, plugin_source("hot", "v2"))
        assert await manager.reload("hot")
        assert manager.state("hot") == PluginState.PAUSED
        await manager.resume("hot")
        assert await manager.execute("hot", "x") == "v2:x:1"
        await manager.stop("hot")
        code.write(file, plugin_source("hot", "v3"))
        assert await manager.reload("hot")
        assert manager.state("hot") == PluginState.LOADED
        assert log(manager)[-4:] == ["v3:load", "v3:init", "v3:restore", "v2:unload"]
        await manager.start("hot")
        assert await manager.execute("hot", "y") == "v3:y:2"


async def test_stale_bytecode_of_a_same_size_edit_in_the_same_second_is_not_used(
    code: Code, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    async with PluginManager() as manager:
        _, file = await start_plugin(manager, code)
        assert has_bytecode(file)  # else this test would prove nothing
        before = file.stat()
        text = plugin_source("hot", "v2")
        assert len(text) == before.st_size
        code.write(file, text)
        os.utime(file, ns=(before.st_atime_ns, before.st_mtime_ns))
        assert await manager.reload("hot")
        assert await manager.execute("hot", "x") == "v2:x:1"


# -- failures: the old version keeps serving -------------------------------------------------

FAILURES = [
    # step, keyword of plugin_source, the line that fails, the error raised by manager.reload
    ("import", "header", "raise RuntimeError('import broke')", PluginLoadError),
    ("construct", "construct", "raise RuntimeError('construct broke')", PluginLoadError),
    ("load", "load", "raise RuntimeError('load broke')", PluginLoadError),
    ("init_plugin", "init", "raise RuntimeError('init_plugin broke')", PluginInitError),
    ("start", "start", "raise RuntimeError('start broke')", PluginLifecycleError),
    ("restore_state", "restore", "raise RuntimeError('restore_state broke')", PluginLifecycleError),
]


@pytest.mark.parametrize(("step", "where", "line", "error"), FAILURES, ids=[f[0] for f in FAILURES])
async def test_a_failing_step_rolls_back_and_names_file_and_line(
    code: Code, step: str, where: str, line: str, error: type[Exception]
) -> None:
    async with PluginManager() as manager:
        name, file = await start_plugin(manager, code)
        assert await manager.execute("hot", "a") == "v1:a:1"
        old_module = sys.modules[name]
        events = Events(manager)
        broken = plugin_source("hot", "v2", **{where: line})
        code.write(file, broken)
        with pytest.raises(error) as caught:
            await manager.reload("hot")
        expected = (
            f"{step}: RuntimeError: {step} broke ({name}/__init__.py:{line_of(broken, line)})"
        )
        assert str(caught.value) == f"reload of 'hot' failed: {expected}"
        assert caught.value.plugin_id == "hot"
        assert caught.value.hook == step
        seen = events.pending()
        assert reload_events(seen) == [
            "ReloadStarted",
            *(["StatePreserved"] if step in ("restore_state", "start") else []),
            "ReloadFailed",
            "RollbackTriggered",
            "StateRestored",
            "ReloadCompleted",
        ]
        failed = next(e for e in seen if isinstance(e, ReloadEvent.ReloadFailed))
        assert (failed.error, failed.attempt, failed.path) == (expected, 1, file)
        completed = seen[-1]
        assert isinstance(completed, ReloadEvent.ReloadCompleted)
        assert completed.success is False
        # The old instance and the old modules serve on, untouched.
        assert sys.modules[name] is old_module
        assert manager.state("hot") == PluginState.RUNNING
        assert await manager.execute("hot", "b") == "v1:b:2"
        assert "v1:stop" not in log(manager)
        # The half-built new instance was unloaded if its load had completed.
        assert ("v2:unload" in log(manager)) == (step in ("init_plugin", "start", "restore_state"))
        code.write(file, plugin_source("hot", "v3"))
        assert await manager.reload("hot")
        assert await manager.execute("hot", "c") == "v3:c:3"


async def test_a_syntax_error_is_reported_with_file_and_line(code: Code) -> None:
    async with PluginManager(hot_reload=IMMEDIATE) as manager:
        name, file = await start_plugin(manager, code)
        events = Events(manager)
        broken = plugin_source("hot", "v2").replace("self.count += 1", "self.count += (")
        async with manager.hot_reloading():
            code.write(file, broken)
            seen = await events.reload("hot")
        failed = next(e for e in seen if isinstance(e, ReloadEvent.ReloadFailed))
        line = line_of(broken, "self.count += (")
        assert failed.error == (
            f"syntax check: SyntaxError: '(' was never closed ({name}/__init__.py:{line})"
        )
        assert failed.attempt == 1
        assert reload_events(seen)[-3:] == ["RollbackTriggered", "StateRestored", "ReloadCompleted"]
        assert await manager.execute("hot", "a") == "v1:a:1"


async def test_an_import_of_a_missing_module_fails_the_reload(code: Code) -> None:
    async with PluginManager() as manager:
        name, file = await start_plugin(manager, code)
        broken = plugin_source("hot", "v2", header="import mofa_no_such_module_anywhere")
        code.write(file, broken)
        with pytest.raises(PluginLoadError) as caught:
            await manager.reload("hot")
        line = line_of(broken, "import mofa_no_such_module_anywhere")
        assert str(caught.value).endswith(
            "import: ModuleNotFoundError: No module named 'mofa_no_such_module_anywhere' "
            f"({name}/__init__.py:{line})"
        )
        assert await manager.execute("hot", "a") == "v1:a:1"


async def test_a_removed_file_fails_the_reload_until_it_is_back(code: Code) -> None:
    async with PluginManager(hot_reload=IMMEDIATE) as manager:
        source = plugin_source(
            "hot", "v1", header="from .words import WORD", execute="input = input + WORD"
        )
        name = code.package({"__init__.py": source, "words.py": "WORD = '!'\n"})
        manager.register(importlib.import_module(name).Plugin())
        await manager.start_all()
        assert await manager.execute("hot", "a") == "v1:a!:1"
        helper = code.root / name / "words.py"
        events = Events(manager)
        async with manager.hot_reloading():
            helper.unlink()
            seen = await events.reload("hot")
            failed = next(e for e in seen if isinstance(e, ReloadEvent.ReloadFailed))
            assert failed.error == (
                f"import: ModuleNotFoundError: No module named '{name}.words' "
                f"({name}/__init__.py:{line_of(source, 'from .words')})"
            )
            assert await manager.execute("hot", "b") == "v1:b!:2"
            code.write(helper, "WORD = '?'\n")
            seen = await events.reload("hot")
            assert seen[-1] == ReloadEvent.ReloadCompleted(
                plugin_id="hot", path=helper, success=True, duration=seen[-1].duration
            )
        assert await manager.execute("hot", "c") == "v1:c?:3"


async def test_save_state_must_return_plain_data(code: Code) -> None:
    async with PluginManager() as manager:
        _, file = await start_plugin(manager, code, save="return {'when': object()}")
        code.write(file, plugin_source("hot", "v2"))
        with pytest.raises(PluginLifecycleError, match=r"save_state: returned dict, not JSON data"):
            await manager.reload("hot")
        assert await manager.execute("hot", "a") == "v1:a:1"


async def test_a_step_past_its_deadline_fails_the_reload(code: Code) -> None:
    async with PluginManager() as manager:
        name = code.package({"__init__.py": plugin_source("hot", "v1")})
        manager.register(importlib.import_module(name).Plugin(), timeout=0.2)
        await manager.start_all()
        file = code.root / name / "__init__.py"
        code.write(file, plugin_source("hot", "v2", load="await asyncio.Event().wait()"))
        with pytest.raises(TimeoutError, match=r"load: timed out after 0\.2s"):
            await manager.reload("hot")
        assert await manager.execute("hot", "a") == "v1:a:1"


async def test_without_auto_rollback_a_failed_reload_takes_the_plugin_down(code: Code) -> None:
    config = HotReloadConfig(auto_rollback=False)
    async with PluginManager(hot_reload=config) as manager:
        _, file = await start_plugin(manager, code)
        await manager.execute("hot", "a")
        await manager.execute("hot", "b")
        events = Events(manager)
        code.write(file, plugin_source("hot", "v2", start="raise RuntimeError('no')"))
        with pytest.raises(PluginLifecycleError):
            await manager.reload("hot")
        seen = events.pending()
        assert "RollbackTriggered" not in reload_events(seen)
        assert manager.state("hot").is_error
        assert manager.state("hot").message is not None
        assert manager.state("hot").message.startswith("reload failed: start: RuntimeError: no")
        assert log(manager)[-2:] == ["v1:stop", "v1:unload"]
        with pytest.raises(InvalidStateError):
            await manager.execute("hot", "c")
        # Fixing the code brings it back up, with the state the old instance had.
        code.write(file, plugin_source("hot", "v3"))
        assert await manager.reload("hot")
        assert manager.state("hot") == PluginState.RUNNING
        assert await manager.execute("hot", "c") == "v3:c:3"


async def test_a_plugin_that_failed_at_run_time_is_revived_by_a_reload(code: Code) -> None:
    async with PluginManager() as manager:
        _, file = await start_plugin(manager, code, execute="raise KeyError(input)")
        with pytest.raises(Exception, match="KeyError"):
            await manager.execute("hot", "a")
        assert manager.state("hot").is_error
        code.write(file, plugin_source("hot", "v2"))
        assert await manager.reload("hot")
        assert manager.state("hot") == PluginState.RUNNING
        assert await manager.execute("hot", "b") == "v2:b:1"


async def test_a_plugin_class_defined_in_a_function_cannot_be_reloaded() -> None:
    from mofa_kernel import AgentPlugin, PluginMetadata, PluginType

    class Local(AgentPlugin):
        metadata = PluginMetadata("local", "Local", PluginType.TOOL)

        async def execute(self, input: str) -> str:
            return input

    async with PluginManager() as manager:
        manager.register(Local())
        with pytest.raises(PluginLoadError, match="defined inside a function"):
            await manager.reload("local")


# -- calls in flight, background tasks, hooks -------------------------------------------------

#: An execute that, for input "slow", says it has begun and waits for the test's gate.
ENTER_AND_WAIT = (
    "if input == 'slow': await self.context.emit_event("
    "PluginEvent.Custom(plugin_id='hot', event_type='entered')); "
    "await gates.gate('slow').wait()"
)


async def test_calls_in_flight_finish_on_the_old_code(code: Code, gates: Any) -> None:
    async with PluginManager() as manager:
        header = f"from mofa_kernel import PluginEvent\nimport {gates.__name__} as gates"
        slow = ENTER_AND_WAIT
        _, file = await start_plugin(manager, code, header=header, execute=slow)
        events = Events(manager)
        call = asyncio.ensure_future(manager.execute("hot", "slow"))
        await events.until(is_(PluginEvent.Custom, "hot", event_type="entered"))
        assert manager.in_flight("hot") == 1
        code.write(file, plugin_source("hot", "v2", header=header, execute=slow))
        reload = asyncio.ensure_future(manager.reload("hot"))
        await events.until(is_(ReloadEvent.ReloadCompleted, "hot", success=True))
        # New calls reach the new code at once; the old call still runs on the old instance.
        assert await manager.execute("hot", "fast") == "v2:fast:2"
        assert "v1:stop" not in log(manager)
        assert not reload.done()
        gates.gate("slow").set()
        assert await call == "v1:slow:1"
        assert await reload is True
        assert log(manager)[-2:] == ["v1:stop", "v1:unload"]


async def test_the_old_instance_background_tasks_are_cancelled(code: Code, gates: Any) -> None:
    header = (
        f"import {gates.__name__} as gates\n\n"
        "async def forever():\n    await asyncio.Event().wait()\n"
    )
    start = "gates.TASKS.append(asyncio.get_running_loop().create_task(forever()))"
    async with PluginManager() as manager:
        _, file = await start_plugin(manager, code, header=header, start=start)
        code.write(file, plugin_source("hot", "v2", header=header, start=start))
        assert await manager.reload("hot")
        old, new = gates.TASKS
        assert old.cancelled()
        assert not new.done()
        new.cancel()


async def test_a_module_of_hooks_is_reloaded_with_its_observer(code: Code, gates: Any) -> None:
    template = f"""\
from mofa_kernel import PluginMetadata, PluginType, hookimpl
import {gates.__name__} as gates

VERSION = "{{version}}"

@hookimpl
def plugin_metadata():
    return PluginMetadata("hooks", "Hooks", PluginType.TOOL)

@hookimpl
def execute(input):
    return VERSION + ":" + input

@hookimpl
def on_plugin_event(event):
    gates.SEEN.append((VERSION, event.variant))
"""
    assert hookimpl  # the template above uses it
    async with PluginManager() as manager:
        name = code.package({"__init__.py": template.format(version="v1")})
        manager.register(importlib.import_module(name))
        await manager.start_all()
        code.write(code.root / name / "__init__.py", template.format(version="v2"))
        assert await manager.reload("hooks")
        assert await manager.execute("hooks", "x") == "v2:x"
        gates.SEEN.clear()
        manager.emit(PluginEvent.Custom(plugin_id="hooks", event_type="ping"))
        assert gates.SEEN == [("v2", "Custom")]


# -- modules are released ---------------------------------------------------------------------


async def test_old_modules_and_instances_are_released_over_50_reloads(code: Code) -> None:
    async with PluginManager() as manager:
        name, file = await start_plugin(manager, code)
        modules: list[weakref.ref[object]] = []
        instances: list[weakref.ref[object]] = []
        for version in range(2, 52):
            modules.append(weakref.ref(sys.modules[name]))
            instances.append(weakref.ref(manager.get("hot")))
            code.write(file, plugin_source("hot", f"v{version}"))
            assert await manager.reload("hot")
        gc.collect()
        assert [ref for ref in modules if ref() is not None] == []
        assert [ref for ref in instances if ref() is not None] == []
        assert await manager.execute("hot", "x") == "v51:x:1"


# -- soak: callers never fail, and answers come from the old or the new code ------------------

SOAK_RELOADS = int(os.environ.get("MOFA_SOAK_RELOADS", "10" if QUICK else "100"))
SOAK_CALLERS = 8


@pytest.mark.slow
async def test_soak_concurrent_callers_during_many_reloads(code: Code) -> None:
    """``MOFA_SOAK_RELOADS=1000 pytest -k soak`` runs a longer soak; quick mode runs 10."""
    async with PluginManager(hot_reload=IMMEDIATE) as manager:
        _, file = await start_plugin(manager, code, execute="await asyncio.sleep(0)")
        written = ["v1"]
        failures: list[BaseException] = []
        answers = 0
        done = asyncio.Event()

        async def caller(index: int) -> None:
            nonlocal answers
            while not done.is_set():
                try:
                    answer = await manager.execute("hot", f"c{index}")
                except Exception as exc:  # noqa: BLE001 - every failure is collected and reported
                    failures.append(exc)
                    continue
                version = answer.split(":")[0]
                assert version in written, answer
                answers += 1

        events = Events(manager)
        async with manager.hot_reloading():
            callers = [asyncio.ensure_future(caller(i)) for i in range(SOAK_CALLERS)]
            for number in range(2, SOAK_RELOADS + 2):
                version = f"v{number}"
                written.append(version)
                code.write(file, plugin_source("hot", version, execute="await asyncio.sleep(0)"))
                seen = await events.reload("hot")
                assert seen[-1].success, seen  # type: ignore[union-attr]
            done.set()
            await asyncio.gather(*callers)
        assert failures == []
        assert answers > SOAK_RELOADS
        assert (await manager.execute("hot", "end")).startswith(f"{written[-1]}:end:")
