"""PluginContext and SharedState: state shared by the plugins of one kernel, and event emission."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from mofa_kernel import PluginConfig, PluginContext, PluginEvent, SharedState
from mofa_kernel._events import KernelEvent


def test_defaults() -> None:
    ctx = PluginContext()
    assert ctx.agent_id == "default"
    assert ctx.config == PluginConfig()
    assert ctx.plugin_id is None
    assert repr(ctx) == "PluginContext(agent_id='default', plugin_id=None)"


def test_config_is_the_one_given() -> None:
    config = PluginConfig({"precision": 12})
    ctx = PluginContext("agent-7", config, plugin_id="calc")
    assert ctx.agent_id == "agent-7"
    assert ctx.config is config
    assert ctx.plugin_id == "calc"


async def test_missing_key_is_none_or_default() -> None:
    ctx = PluginContext()
    assert await ctx.get_state("absent") is None
    assert await ctx.get_state("absent", 0) == 0


async def test_set_get_remove() -> None:
    ctx = PluginContext()
    await ctx.set_state("answer", {"value": 42})
    assert await ctx.get_state("answer") == {"value": 42}
    assert await ctx.remove_state("answer") == {"value": 42}
    assert await ctx.get_state("answer") is None
    assert await ctx.remove_state("answer") is None


async def test_state_holds_any_object() -> None:
    ctx = PluginContext()
    lock = asyncio.Lock()
    await ctx.set_state("lock", lock)
    assert await ctx.get_state("lock") is lock


async def test_contexts_made_with_config_share_state() -> None:
    root = PluginContext("agent")
    calc = root.with_config(PluginConfig({"a": 1}), plugin_id="calc")
    memory = root.with_config(PluginConfig({"b": 2}), plugin_id="memory")
    await calc.set_state("last_result", 7)
    assert await memory.get_state("last_result") == 7
    assert await root.get_state("last_result") == 7
    assert calc.shared_state is memory.shared_state is root.shared_state
    assert calc.config.get_int("a") == 1
    assert memory.config.get_int("b") == 2
    assert memory.agent_id == "agent"
    assert (calc.plugin_id, memory.plugin_id) == ("calc", "memory")


def test_with_config_keeps_plugin_id_when_not_given() -> None:
    ctx = PluginContext(plugin_id="calc").with_config(PluginConfig())
    assert ctx.plugin_id == "calc"


async def test_separate_contexts_do_not_share_state() -> None:
    first, second = PluginContext(), PluginContext()
    await first.set_state("k", 1)
    assert await second.get_state("k") is None


async def test_explicit_shared_state() -> None:
    shared = SharedState()
    shared.set("k", "v")
    ctx = PluginContext(shared_state=shared)
    assert await ctx.get_state("k") == "v"
    await ctx.set_state("other", 1)
    assert sorted(shared.keys()) == ["k", "other"]


def _increment(value: int | None) -> int:
    return (value or 0) + 1


async def test_concurrent_update_state_from_many_tasks() -> None:
    root = PluginContext()
    contexts = [root.with_config(PluginConfig(), plugin_id=f"p{i}") for i in range(20)]

    async def bump(ctx: PluginContext) -> None:
        for _ in range(100):
            await ctx.update_state("counter", _increment)
            await asyncio.sleep(0)  # hand over to the other tasks between updates

    await asyncio.gather(*(bump(ctx) for ctx in contexts))
    assert await root.get_state("counter") == 2000


def test_concurrent_update_from_many_threads() -> None:
    shared = SharedState()
    ctx = PluginContext(shared_state=shared)
    start = threading.Barrier(8)

    def bump() -> None:
        start.wait()
        loop = asyncio.new_event_loop()
        try:
            for _ in range(500):
                loop.run_until_complete(ctx.update_state("counter", _slow_increment))
        finally:
            loop.close()

    def slow_increment_loop() -> None:
        start.wait()
        for _ in range(500):
            shared.update("counter", _slow_increment)

    threads = [threading.Thread(target=bump) for _ in range(4)]
    threads += [threading.Thread(target=slow_increment_loop) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert shared.get("counter") == 4000


def _slow_increment(value: int | None) -> int:
    # Reading, then yielding the GIL, then writing: a lost update shows if the lock is missing.
    current = value or 0
    time.sleep(0)
    return current + 1


async def test_update_state_returns_the_new_value() -> None:
    ctx = PluginContext()
    assert await ctx.update_state("n", _increment) == 1
    assert await ctx.update_state("n", _increment) == 2


async def test_emit_event_without_sink_is_a_no_op() -> None:
    ctx = PluginContext()
    result = await ctx.emit_event(PluginEvent.PluginLoaded(plugin_id="a"))
    assert result is None


async def test_emit_event_delivers_to_the_sink() -> None:
    received: list[KernelEvent] = []
    ctx = PluginContext(event_sink=received.append)
    event = PluginEvent.Custom(plugin_id="calc", event_type="computed", data=b"42")
    await ctx.emit_event(event)
    assert received == [event]


async def test_sink_travels_with_config_and_can_be_replaced() -> None:
    first: list[KernelEvent] = []
    second: list[Any] = []
    root = PluginContext(event_sink=first.append)
    child = root.with_config(PluginConfig(), plugin_id="calc")
    await child.emit_event(PluginEvent.PluginLoaded(plugin_id="calc"))
    rerouted = child.with_event_sender(second.append)
    await rerouted.emit_event(PluginEvent.PluginUnloaded(plugin_id="calc"))
    silenced = child.with_event_sender(None)
    await silenced.emit_event(PluginEvent.PluginUnloaded(plugin_id="calc"))
    assert first == [PluginEvent.PluginLoaded(plugin_id="calc")]
    assert second == [PluginEvent.PluginUnloaded(plugin_id="calc")]
    assert rerouted.shared_state is root.shared_state


class TestSharedState:
    def test_get_set_remove_keys(self) -> None:
        shared = SharedState()
        assert shared.get("k") is None
        assert shared.get("k", 1) == 1
        shared.set("k", 2)
        shared.set("j", 3)
        assert shared.get("k") == 2
        assert shared.keys() == ["k", "j"]
        assert shared.remove("k") == 2
        assert shared.remove("k") is None
        assert shared.keys() == ["j"]

    def test_update_sees_none_for_missing(self) -> None:
        seen: list[object] = []

        def record(old: object) -> str:
            seen.append(old)
            return "new"

        shared = SharedState()
        assert shared.update("k", record) == "new"
        assert seen == [None]
        assert shared.get("k") == "new"

    def test_slots(self) -> None:
        assert not hasattr(SharedState(), "__dict__")
