"""The math skill with the real calculator and memory plugins: order, shared state, answers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mofa_sample_calculator import CalculatorPlugin
from mofa_sample_math_skill import VARIABLE_PREFIX, MathSkillPlugin
from mofa_sample_memory import MemoryPlugin

from mofa_kernel import (
    KernelEvent,
    PluginConfig,
    PluginEvent,
    PluginExecutionError,
    PluginManager,
    PluginState,
    PluginType,
)


def register_all(manager: PluginManager, db_path: Path) -> None:
    # Registered skill first on purpose: the order comes from the dependencies.
    manager.register(MathSkillPlugin())
    manager.register(MemoryPlugin(), config=PluginConfig({"path": str(db_path)}))
    manager.register(CalculatorPlugin())


@pytest.fixture
async def manager(tmp_path: Path) -> AsyncIterator[PluginManager]:
    async with PluginManager() as manager:
        register_all(manager, tmp_path / "memory.sqlite3")
        report = await manager.start_all()
        assert report.ok, report.outcomes
        yield manager


async def ask(manager: PluginManager, text: str) -> str:
    return await manager.execute("math-skill", text)


def test_metadata_declares_the_dependencies() -> None:
    meta = MathSkillPlugin().metadata
    assert meta.id == "math-skill"
    assert meta.plugin_type == PluginType.SKILL
    assert set(meta.dependencies) == {"calculator", "memory"}


async def test_dependencies_start_first_and_stop_last(tmp_path: Path) -> None:
    transitions: list[tuple[str, str]] = []

    def listener(event: KernelEvent) -> None:
        if isinstance(event, PluginEvent.StateChanged):
            if event.new_state == PluginState.RUNNING:
                transitions.append(("up", event.plugin_id))
            elif event.old_state == PluginState.RUNNING:
                transitions.append(("down", event.plugin_id))

    async with PluginManager() as manager:
        manager.add_listener(listener)
        register_all(manager, tmp_path / "memory.sqlite3")
        assert manager.start_order()[-1] == "math-skill"
        assert (await manager.start_all()).ok

    ups = [pid for kind, pid in transitions if kind == "up"]
    downs = [pid for kind, pid in transitions if kind == "down"]
    assert ups[-1] == "math-skill"
    assert set(ups) == {"calculator", "memory", "math-skill"}
    assert downs == list(reversed(ups))


async def test_remember_recall_and_compute(manager: PluginManager) -> None:
    assert await ask(manager, "remember x = 2 * 21") == "x = 42"
    assert await ask(manager, "Remember y = x / 4") == "y = 10.5"
    assert await ask(manager, "what is 3 * (x + 1)?") == "3 * (x + 1) = 129"
    assert await ask(manager, "what's y * 2") == "y * 2 = 21"
    assert await ask(manager, "sqrt(x - 6)") == "sqrt(x - 6) = 6"
    assert await ask(manager, "recall y") == "y = 10.5"
    assert await ask(manager, "variables") == "x = 42, y = 10.5"
    assert await ask(manager, "forget y") == "forgot y"
    assert await ask(manager, "variables") == "x = 42"


async def test_variables_are_kept_in_memory(manager: PluginManager) -> None:
    await ask(manager, "remember total = 6 * 7")
    request = {"op": "get", "key": VARIABLE_PREFIX + "total"}
    reply = json.loads(await manager.execute("memory", json.dumps(request)))
    assert reply == {"ok": True, "found": True, "value": 42}


async def test_exchanges_are_appended_to_the_conversation(manager: PluginManager) -> None:
    await ask(manager, "remember x = 1")
    await ask(manager, "x + 1")
    request = {"op": "history", "conversation": "math-skill"}
    reply = json.loads(await manager.execute("memory", json.dumps(request)))
    assert [(m["role"], m["content"]) for m in reply["messages"]] == [
        ("user", "remember x = 1"),
        ("assistant", "x = 1"),
        ("user", "x + 1"),
        ("assistant", "x + 1 = 2"),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("recall nobody", "nothing is remembered as 'nobody'"),
        ("forget nobody", "nothing is remembered as 'nobody'"),
        ("what is z + 1", "in 'z + 1': unknown name 'z' at column 1"),
        ("remember pi = 3", "variable name 'pi' is reserved"),
        ("remember x = 1 / 0", "in '1 / 0': division by zero at column 5"),
    ],
)
async def test_errors_leave_the_skill_running(
    manager: PluginManager, text: str, message: str
) -> None:
    with pytest.raises(PluginExecutionError) as caught:
        await ask(manager, text)
    assert message in str(caught.value)
    assert caught.value.plugin_id == "math-skill"
    assert manager.state("math-skill") == PluginState.RUNNING


async def test_variables_survive_a_restart(tmp_path: Path) -> None:
    db_path = tmp_path / "memory.sqlite3"
    async with PluginManager() as first:
        register_all(first, db_path)
        await first.start_all()
        await ask(first, "remember rate = 0.2")
    async with PluginManager() as second:
        register_all(second, db_path)
        await second.start_all()
        assert await ask(second, "100 * rate") == "100 * rate = 20"


async def test_a_missing_dependency_keeps_only_the_skill_down(tmp_path: Path) -> None:
    async with PluginManager() as manager:
        manager.register(MathSkillPlugin())
        manager.register(CalculatorPlugin())
        report = await manager.start_all()
        assert report.outcomes["calculator"].status == "ok"
        outcome = report.outcomes["math-skill"]
        assert outcome.status == "skipped"
        assert outcome.error is not None
        assert "memory" in outcome.error
        assert manager.state("math-skill") == PluginState.UNLOADED


async def test_a_stopped_dependency_is_reported(manager: PluginManager) -> None:
    await manager.stop("calculator")
    with pytest.raises(PluginExecutionError, match="the calculator is not running"):
        await ask(manager, "1 + 1")
    await manager.start("calculator")
    assert await ask(manager, "1 + 1") == "1 + 1 = 2"


async def test_stats(manager: PluginManager) -> None:
    await ask(manager, "1 + 1")
    assert (await manager.stats())["math-skill"] == {"answered": 1}
