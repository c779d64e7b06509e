"""Containment: what a hostile or careless plugin cannot do to the host or to other plugins.

Each test is one attack from the containment section of the contract, driven
through the public API beside a bystander plugin that keeps working.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from typing import Any

import pytest

from mofa_kernel import (
    AgentPlugin,
    KernelEvent,
    PluginError,
    PluginEvent,
    PluginExecutionError,
    PluginLoadError,
    PluginManager,
    PluginMetadata,
    PluginPriority,
    PluginState,
    PluginType,
)


class Bystander(AgentPlugin):
    metadata = PluginMetadata("bystander", "Bystander", PluginType.TOOL)

    async def execute(self, input: str) -> str:
        return "ok:" + input


class Custom(BaseException):
    """A BaseException that is neither an Exception nor one of Python's own."""


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


class Hostile(AgentPlugin):
    """Raises ``fault`` (an exception instance, or a callable making one) in step ``where``."""

    def __init__(self, pid: str, where: str, fault: Any) -> None:
        self.metadata = PluginMetadata(pid, pid, PluginType.TOOL)
        self.where = where
        self.fault = fault

    def _maybe(self, step: str) -> None:
        if step == self.where:
            raise self.fault() if callable(self.fault) else self.fault

    async def start(self) -> None:
        self._maybe("start")

    async def execute(self, input: str) -> str:
        self._maybe("execute")
        return input


class Recorder:
    """Every event, and a way to wait for the first that matches."""

    def __init__(self, manager: PluginManager) -> None:
        self.events: list[KernelEvent] = []
        self._changed = asyncio.Event()
        manager.add_listener(self._seen)

    def _seen(self, event: KernelEvent) -> None:
        self.events.append(event)
        self._changed.set()

    def errors(self) -> dict[str, str]:
        return {e.plugin_id: e.error for e in self.events if isinstance(e, PluginEvent.PluginError)}

    async def error_of(self, plugin_id: str) -> str:
        while plugin_id not in self.errors():
            self._changed.clear()
            await asyncio.wait_for(self._changed.wait(), 10)
        return self.errors()[plugin_id]


FAULTS = {
    "SystemExit": lambda: SystemExit(4),
    "GeneratorExit": GeneratorExit,
    "custom BaseException": Custom,
    "unprintable": Unprintable,
}


@pytest.mark.parametrize("fault", list(FAULTS), ids=list(FAULTS))
async def test_any_exception_from_execute_is_a_contained_fault(fault: str) -> None:
    async with PluginManager() as manager:
        recorder = Recorder(manager)
        manager.register(Hostile("hostile", "execute", FAULTS[fault]))
        manager.register(Bystander())
        assert (await manager.start_all()).ok
        with pytest.raises(PluginExecutionError) as caught:
            await manager.execute("hostile", "x")
        assert caught.value.plugin_id == "hostile"
        assert manager.state("hostile").is_error
        assert (await recorder.error_of("hostile")).startswith("execute failed: ")
        assert await manager.execute("bystander", "y") == "ok:y"


@pytest.mark.parametrize("fault", list(FAULTS), ids=list(FAULTS))
async def test_any_exception_from_start_fails_that_plugin_only(fault: str) -> None:
    async with PluginManager() as manager:
        manager.register(Hostile("hostile", "start", FAULTS[fault]))
        manager.register(Bystander())
        report = await manager.start_all()
        assert report.failed == ["hostile"]
        assert report.outcomes["bystander"].status == "ok"
        assert manager.state("hostile").is_error
        assert await manager.execute("bystander", "y") == "ok:y"


def test_an_unprintable_exception_is_described_safely() -> None:
    async def scenario() -> str:
        async with PluginManager() as manager:
            manager.register(Hostile("hostile", "execute", Unprintable))
            await manager.start_all()
            with pytest.raises(PluginExecutionError) as caught:
                await manager.execute("hostile", "x")
            return str(caught.value)

    message = asyncio.run(scenario())
    assert message.startswith("execute failed: Unprintable: <str() of the exception raised>")


class Spawner(AgentPlugin):
    """Starts a background task that ends with ``fault``; ``execute`` returns at once."""

    metadata = PluginMetadata("spawner", "Spawner", PluginType.TOOL)

    def __init__(self, fault: BaseException) -> None:
        self.fault = fault
        self.task: asyncio.Task[None] | None = None

    async def execute(self, input: str) -> str:
        async def background() -> None:
            await asyncio.sleep(0)
            raise self.fault

        self.task = asyncio.get_running_loop().create_task(background())
        return input


@pytest.mark.parametrize("fault", [SystemExit(4), Custom(), GeneratorExit()], ids=repr)
def test_a_task_the_plugin_started_cannot_end_the_host(fault: BaseException) -> None:
    async def scenario() -> tuple[str, PluginState, str]:
        async with PluginManager() as manager:
            recorder = Recorder(manager)
            plugin = Spawner(fault)
            manager.register(plugin)
            manager.register(Bystander())
            await manager.start_all()
            assert await manager.execute("spawner", "x") == "x"
            error = await recorder.error_of("spawner")
            assert plugin.task is not None
            with pytest.raises(PluginError):
                await plugin.task  # the task ends with the kernel's error, not the fault
            return error, manager.state("spawner"), await manager.execute("bystander", "y")

    error, state, answer = asyncio.run(scenario())  # returns: the host was not ended
    assert error.startswith(f"task failed: {type(fault).__name__}")
    assert state.is_error
    assert answer == "ok:y"


class FlakyMetadata(AgentPlugin):
    """A metadata property that works once, then raises."""

    reads = 0

    @property  # type: ignore[override]
    def metadata(self) -> PluginMetadata:
        FlakyMetadata.reads += 1
        if FlakyMetadata.reads > 1:
            raise RuntimeError("metadata read twice")
        return PluginMetadata("flaky", "Flaky", PluginType.TOOL)

    async def execute(self, input: str) -> str:
        return input


async def test_metadata_is_read_once() -> None:
    FlakyMetadata.reads = 0
    async with PluginManager() as manager:
        assert manager.register(FlakyMetadata()) == "flaky"
        assert (await manager.start_all()).ok
        assert await manager.execute("flaky", "x") == "x"
        assert manager.record("flaky").metadata == PluginMetadata("flaky", "Flaky", PluginType.TOOL)
    assert FlakyMetadata.reads == 1


async def test_metadata_changed_afterwards_is_not_seen() -> None:
    plugin = Bystander()
    plugin.metadata = PluginMetadata("changer", "Changer", PluginType.TOOL)
    async with PluginManager() as manager:
        manager.register(plugin)
        object.__setattr__(plugin.metadata, "priority", "very high")
        object.__setattr__(plugin.metadata, "dependencies", 42)
        report = await manager.start_all()
        assert report.ok, report.errors()
        assert manager.record("changer").metadata.priority is PluginPriority.NORMAL  # type: ignore[union-attr]
        assert manager.dependency_graph() == {"changer": ()}


class StubbornState(AgentPlugin):
    """A ``state`` property whose setter raises."""

    metadata = PluginMetadata("stubborn", "Stubborn", PluginType.TOOL)

    @property  # type: ignore[override]
    def state(self) -> PluginState:
        return PluginState.UNLOADED

    @state.setter
    def state(self, value: PluginState) -> None:
        raise RuntimeError("you may not set my state")

    async def execute(self, input: str) -> str:
        return input


async def test_a_state_setter_that_raises_fails_that_plugin_only() -> None:
    async with PluginManager() as manager:
        recorder = Recorder(manager)
        manager.register(StubbornState())
        manager.register(Bystander())
        report = await manager.start_all()
        assert report.outcomes["bystander"].status == "ok"
        assert manager.state("stubborn").is_error
        assert "you may not set my state" in await recorder.error_of("stubborn")
        assert await manager.execute("bystander", "y") == "ok:y"


def _chain(n: int, last_dependency: str | None) -> list[AgentPlugin]:
    plugins: list[AgentPlugin] = []
    for index in range(n):
        deps: tuple[str, ...] = (f"c{index + 1}",) if index + 1 < n else ()
        if index + 1 == n and last_dependency is not None:
            deps = (last_dependency,)
        plugin = Bystander()
        plugin.metadata = PluginMetadata(f"c{index}", "c", PluginType.TOOL, dependencies=deps)
        plugins.append(plugin)
    return plugins


@pytest.mark.parametrize("end", ["ghost", "c0"], ids=["missing at the end", "a cycle"])
async def test_a_dependency_chain_of_10000_plugins(end: str) -> None:
    assert sys.getrecursionlimit() < 10_000
    async with PluginManager() as manager:
        for plugin in _chain(10_000, end):
            manager.register(plugin)
        manager.register(Bystander())
        report = await manager.start_all()
        assert report.outcomes["bystander"].status == "ok"
        assert len(report.skipped) == 10_000
        assert report.outcomes["c0"].error is not None
        assert manager.state("c9999") == PluginState.UNLOADED


async def test_a_chain_of_10000_running_plugins_stops_and_unloads() -> None:
    async with PluginManager() as manager:
        for plugin in _chain(10_000, None):
            manager.register(plugin)
        assert (await manager.start_all()).ok
        assert manager.start_order()[0] == "c9999"
        assert (await manager.stop_all()).ok
        assert (await manager.unload_all()).ok


class Forger(AgentPlugin):
    """Emits a PluginError in the bystander's name, or raises one naming the bystander."""

    metadata = PluginMetadata("forger", "Forger", PluginType.TOOL)

    async def load(self, ctx: Any) -> None:
        self.ctx = ctx

    async def execute(self, input: str) -> str:
        if input == "emit":
            await self.ctx.emit_event(PluginEvent.PluginError(plugin_id="bystander", error="x"))
        if input == "own":
            await self.ctx.emit_event(PluginEvent.Custom(plugin_id="forger", event_type="t"))
        if input == "raise":
            raise PluginExecutionError("the bystander broke", plugin_id="bystander")
        return input


async def test_a_plugin_cannot_speak_in_another_plugins_name() -> None:
    async with PluginManager() as manager:
        recorder = Recorder(manager)
        manager.register(Forger())
        manager.register(Bystander())
        await manager.start_all()
        assert await manager.execute("forger", "own") == "own"  # its own name is fine
        assert any(isinstance(e, PluginEvent.Custom) for e in recorder.events)
        with pytest.raises(PluginExecutionError) as caught:
            await manager.execute("forger", "emit")
        assert caught.value.plugin_id == "forger"
        assert "cannot emit PluginError in the name of 'bystander'" in str(caught.value)
        assert "bystander" not in recorder.errors()
        assert manager.state("bystander") == PluginState.RUNNING


async def test_an_error_naming_another_plugin_blames_the_one_that_raised_it() -> None:
    async with PluginManager() as manager:
        manager.register(Forger())
        manager.register(Bystander())
        await manager.start_all()
        with pytest.raises(PluginExecutionError) as caught:
            await manager.execute("forger", "raise")
        assert caught.value.plugin_id == "forger"
        assert manager.state("forger") == PluginState.RUNNING  # a rejection, not a fault
        assert manager.state("bystander") == PluginState.RUNNING


class Blocker(AgentPlugin):
    metadata = PluginMetadata("blocker", "Blocker", PluginType.TOOL)

    async def execute(self, input: str) -> str:
        time.sleep(float(input))  # noqa: ASYNC251 - the fault under test: the loop is held
        return input


class Patient(AgentPlugin):
    """Waits for ``release`` inside execute."""

    metadata = PluginMetadata("patient", "Patient", PluginType.TOOL)

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.entered = asyncio.Event()

    async def execute(self, input: str) -> str:
        self.entered.set()
        await self.release.wait()
        return "patient:" + input


async def test_a_blocked_loop_blames_the_blocker_not_the_calls_it_delayed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="mofa_kernel")
    patient = Patient()
    async with PluginManager(block_limit=0.5) as manager:
        manager.register(Blocker())
        manager.register(patient, timeout=2.0)
        await manager.start_all()
        waiting = asyncio.create_task(manager.execute("patient", "x"))
        await patient.entered.wait()
        # Holds the loop for twice the patient's deadline; its own call fails as it returns.
        with pytest.raises(PluginExecutionError, match="blocked the event loop"):
            await manager.execute("blocker", "4")
        patient.release.set()
        assert await waiting == "patient:x"
        assert manager.state("patient") == PluginState.RUNNING
        assert manager.state("blocker").is_error
    said = [r.getMessage() for r in caplog.records if r.name == "mofa_kernel"]
    assert any(m.startswith("plugin blocker: execute is blocking the event loop") for m in said)


@pytest.mark.parametrize("bad", ["", "two words", "evil\u202eexe", "bell\x07", "line\nbreak"])
async def test_register_refuses_an_invalid_plugin_id(bad: str) -> None:
    plugin = Bystander()
    plugin.metadata = PluginMetadata(bad, "Bad", PluginType.TOOL)
    async with PluginManager() as manager:
        with pytest.raises(PluginLoadError) as refused:
            manager.register(plugin)
        assert str(refused.value).startswith(f"invalid plugin id {bad!a}: it ")
        assert "\n" not in str(refused.value)
        assert manager.plugin_ids() == []
