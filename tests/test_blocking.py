"""A plugin that blocks the event loop is noticed, named, and put in the error state."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from mofa_kernel import (
    AgentPlugin,
    KernelEvent,
    PluginEvent,
    PluginExecutionError,
    PluginManager,
    PluginMetadata,
    PluginState,
    PluginType,
)


class Sleeper(AgentPlugin):
    """Blocks the loop with a synchronous sleep in the step named ``where``."""

    def __init__(self, pid: str, where: str = "", seconds: float = 0.4, deps: tuple[str, ...] = ()):
        self.metadata = PluginMetadata(pid, pid, PluginType.TOOL, dependencies=deps)
        self.where = where
        self.seconds = seconds

    def _maybe_block(self, step: str) -> None:
        if step == self.where:
            time.sleep(self.seconds)  # the fault under test

    async def start(self) -> None:
        self._maybe_block("start")

    async def execute(self, input: str) -> str:
        self._maybe_block("execute")
        return input


def _errors(manager: PluginManager) -> tuple[list[str], asyncio.Event]:
    seen: list[str] = []
    arrived = asyncio.Event()

    def listen(event: KernelEvent) -> None:
        if isinstance(event, PluginEvent.PluginError):
            seen.append(f"{event.plugin_id}: {event.error}")
            arrived.set()

    manager.add_listener(listen)
    return seen, arrived


async def test_blocking_execute_is_reported_with_its_line() -> None:
    async with PluginManager(block_limit=0.1) as manager:
        errors, arrived = _errors(manager)
        manager.register(Sleeper("sleepy", where="execute"))
        manager.register(Sleeper("calm"))
        await manager.start_all()
        with pytest.raises(PluginExecutionError, match="blocked the event loop") as caught:
            await manager.execute("sleepy", "x")
        assert caught.value.plugin_id == "sleepy"
        assert manager.state("sleepy").is_error  # already when execute() returns
        await asyncio.wait_for(arrived.wait(), 5)
        [error] = errors
        assert error.startswith(
            "sleepy: execute failed: blocked the event loop for over 0.1s (test_blocking.py:"
        )
        assert manager.state("sleepy").is_error
        assert manager.state("calm") == PluginState.RUNNING
        assert await manager.execute("calm", "y") == "y"


async def test_blocking_start_fails_the_start_and_skips_dependents() -> None:
    async with PluginManager(block_limit=0.1) as manager:
        manager.register(Sleeper("sleepy", where="start"))
        manager.register(Sleeper("needs-sleepy", deps=("sleepy",)))
        manager.register(Sleeper("calm"))
        report = await manager.start_all()
        error = report.outcomes["sleepy"].error or ""
        assert error.startswith("start failed: blocked the event loop for over 0.1s")
        assert report.outcomes["needs-sleepy"].status == "skipped"
        assert report.outcomes["calm"].status == "ok"


async def test_short_work_and_host_blocking_are_not_blamed_on_plugins() -> None:
    async with PluginManager(block_limit=0.1) as manager:
        errors, _ = _errors(manager)
        manager.register(Sleeper("quick", where="execute", seconds=0.01))
        await manager.start_all()
        assert await manager.execute("quick", "x") == "x"
        time.sleep(0.3)  # the host itself blocks: no plugin is running  # noqa: ASYNC251
        await asyncio.sleep(0.1)  # give the heartbeat its turn
        assert errors == []
        assert manager.state("quick") == PluginState.RUNNING


async def test_watching_can_be_switched_off() -> None:
    before = set(threading.enumerate())
    async with PluginManager(block_limit=None) as manager:
        errors, _ = _errors(manager)
        manager.register(Sleeper("sleepy", where="execute", seconds=0.2))
        await manager.start_all()
        assert await manager.execute("sleepy", "x") == "x"
        # Nothing watches: no monitor thread was started to notice the block later.
        started = set(threading.enumerate()) - before
        assert "mofa-kernel loop monitor" not in {thread.name for thread in started}
        assert errors == []
        assert manager.state("sleepy") == PluginState.RUNNING


@pytest.mark.parametrize("hook", ["health_check", "stats"])
async def test_blocking_health_or_stats_is_reported_by_that_call(hook: str) -> None:
    class Slow(Sleeper):
        async def health_check(self) -> bool:
            self._maybe_block("health_check")
            return True

        def stats(self) -> dict[str, int]:
            self._maybe_block("stats")
            return {"calls": 1}

    async with PluginManager(block_limit=0.1) as manager:
        manager.register(Slow("slow", where=hook, seconds=0.3))
        await manager.start_all()
        if hook == "health_check":
            assert await manager.health_check() == {"slow": False}
        else:
            stats = await manager.stats()
            assert stats["slow"]["error"].startswith("stats failed: blocked the event loop")
        assert manager.state("slow").is_error
