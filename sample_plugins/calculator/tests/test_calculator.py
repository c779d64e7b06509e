"""The calculator plugin driven by a real PluginManager."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from mofa_sample_calculator import EVALUATE_KEY, CalculatorPlugin

from mofa_kernel import (
    PluginConfig,
    PluginExecutionError,
    PluginManager,
    PluginState,
    PluginType,
)


@pytest.fixture
async def manager() -> AsyncIterator[PluginManager]:
    async with PluginManager() as manager:
        yield manager


async def start(manager: PluginManager, **settings: object) -> CalculatorPlugin:
    plugin = CalculatorPlugin()
    manager.register(plugin, config=PluginConfig(settings))
    report = await manager.start_all()
    assert report.ok, report.outcomes
    return plugin


def test_metadata() -> None:
    meta = CalculatorPlugin().metadata
    assert meta.id == "calculator"
    assert meta.plugin_type == PluginType.TOOL
    assert meta.dependencies == ()


async def test_executes_expressions(manager: PluginManager) -> None:
    await start(manager)
    assert await manager.execute("calculator", "2 * (3 + 4)") == "14"
    assert await manager.execute("calculator", "7 / 2") == "3.5"
    assert await manager.execute("calculator", "2 ** 64") == "18446744073709551616"


async def test_precision_rounds_float_results(manager: PluginManager) -> None:
    await start(manager, precision=4)
    assert await manager.execute("calculator", "sqrt(2) / 2") == "0.7071"
    assert await manager.execute("calculator", "10 // 3") == "3"


@pytest.mark.parametrize(
    ("precision", "message"),
    [
        (99, "settings.precision: expected 0 to 17, got 99"),
        ("4", "plugins.calculator.settings.precision: expected an integer, got a string"),
        (True, "plugins.calculator.settings.precision: expected an integer, got a boolean"),
    ],
)
async def test_bad_precision_fails_the_plugin(
    manager: PluginManager, precision: object, message: str
) -> None:
    manager.register(CalculatorPlugin(), config=PluginConfig({"precision": precision}))
    report = await manager.start_all()
    assert report.failed == ["calculator"]
    error = report.outcomes["calculator"].error
    assert error is not None
    assert message in error
    assert manager.state("calculator").is_error


async def test_a_bad_expression_is_rejected_and_the_plugin_keeps_running(
    manager: PluginManager,
) -> None:
    await start(manager)
    with pytest.raises(PluginExecutionError) as caught:
        await manager.execute("calculator", "1 / 0")
    assert str(caught.value) == "division by zero at column 5"
    assert caught.value.plugin_id == "calculator"
    assert manager.state("calculator") == PluginState.RUNNING
    assert await manager.execute("calculator", "1 / 4") == "0.25"


async def test_publishes_its_evaluator_while_running(manager: PluginManager) -> None:
    plugin = await start(manager)
    shared = plugin.ctx.shared_state
    evaluate = shared.get(EVALUATE_KEY)
    assert evaluate is not None
    assert evaluate("x * 2", {"x": 21}) == 42
    with pytest.raises(ValueError, match="unknown name 'y'"):
        evaluate("y")
    await manager.stop("calculator")
    assert shared.get(EVALUATE_KEY) is None


async def test_stats_count_evaluations_and_failures(manager: PluginManager) -> None:
    await start(manager)
    await manager.execute("calculator", "1 + 1")
    with pytest.raises(PluginExecutionError):
        await manager.execute("calculator", "1 +")
    stats = await manager.stats()
    assert stats["calculator"] == {"evaluations": 1, "failures": 1}
    assert (await manager.health_check())["calculator"] is True


async def test_shutdown_returns_to_unloaded(manager: PluginManager) -> None:
    await start(manager)
    await manager.shutdown()
    assert manager.state("calculator") == PluginState.UNLOADED
