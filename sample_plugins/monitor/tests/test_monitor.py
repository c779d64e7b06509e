"""The monitor, a module of hooks, driven by a real PluginManager."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import mofa_sample_monitor
import pytest

from mofa_kernel import (
    AgentPlugin,
    PluginEvent,
    PluginExecutionError,
    PluginManager,
    PluginMetadata,
    PluginPriority,
    PluginState,
    PluginType,
    ReloadEvent,
)


class Probe(AgentPlugin):
    """A small class-style plugin for the monitor to watch."""

    metadata = PluginMetadata("probe", "Probe", PluginType.TOOL)

    async def execute(self, input: str) -> str:
        assert self.context is not None
        await self.context.emit_event(
            PluginEvent.Custom(plugin_id=self.plugin_id, event_type="echo", data=input.encode())
        )
        return input


class Broken(Probe):
    metadata = PluginMetadata("broken", "Broken", PluginType.TOOL)

    async def init_plugin(self) -> None:
        raise RuntimeError("probe refuses to start")


@pytest.fixture(autouse=True)
def fresh_monitor() -> Iterator[None]:
    mofa_sample_monitor.reset()
    yield
    mofa_sample_monitor.reset()


@pytest.fixture
async def manager() -> AsyncIterator[PluginManager]:
    async with PluginManager() as manager:
        manager.register(mofa_sample_monitor)  # the module itself is the plugin
        yield manager


async def report(manager: PluginManager) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(await manager.execute("monitor", "report"))
    return data


def test_metadata() -> None:
    meta = mofa_sample_monitor.plugin_metadata()
    assert meta.id == "monitor"
    assert meta.plugin_type == PluginType.MONITOR
    assert meta.priority == PluginPriority.CRITICAL


async def test_registers_as_a_module_of_hooks(manager: PluginManager) -> None:
    assert manager.plugin_ids() == ["monitor"]
    assert manager.get("monitor").metadata == mofa_sample_monitor.METADATA


async def test_counts_events_per_variant_and_plugin(manager: PluginManager) -> None:
    manager.register(Probe())
    assert (await manager.start_all()).ok
    data = await report(manager)
    # Each plugin: Unloaded->Loading->Loaded->Running (3 StateChanged) and one PluginLoaded.
    assert data["events"]["by_variant"] == {"PluginLoaded": 2, "StateChanged": 6}
    assert data["events"]["total"] == 8
    assert data["events"]["by_plugin"] == {
        "monitor": {"PluginLoaded": 1, "StateChanged": 3},
        "probe": {"PluginLoaded": 1, "StateChanged": 3},
    }
    assert data["states"] == {"monitor": "Running", "probe": "Running"}
    assert data["errors"] == {}


async def test_times_start_up_from_loading_to_running(manager: PluginManager) -> None:
    manager.register(Probe())
    await manager.start_all()
    startup = (await report(manager))["startup_seconds"]
    assert set(startup) == {"monitor", "probe"}
    assert all(0 <= seconds < 60 for seconds in startup.values())


async def test_sees_custom_events_and_errors(manager: PluginManager) -> None:
    manager.register(Probe())
    manager.register(Broken())
    report_ = await manager.start_all()
    assert report_.failed == ["broken"]
    assert await manager.execute("probe", "hi") == "hi"
    data = await report(manager)
    assert data["events"]["by_plugin"]["probe"]["Custom"] == 1
    assert data["events"]["by_plugin"]["broken"]["PluginError"] == 1
    assert "probe refuses to start" in data["errors"]["broken"]
    assert data["states"]["broken"] == "Error"
    assert "broken" not in data["startup_seconds"]


async def test_records_reload_durations(manager: PluginManager) -> None:
    await manager.start_all()
    manager.emit(
        ReloadEvent.ReloadCompleted(plugin_id="probe", path="probe.py", success=True, duration=0.25)
    )
    manager.emit(
        ReloadEvent.ReloadCompleted(plugin_id="other", path="o.py", success=False, duration=9.0)
    )
    data = await report(manager)
    assert data["reload_seconds"] == {"probe": 0.25}
    assert data["events"]["by_variant"]["ReloadCompleted"] == 2


async def test_counts_shutdown_events() -> None:
    async with PluginManager() as manager:
        manager.register(mofa_sample_monitor)
        manager.register(Probe())
        await manager.start_all()
    # Stopped and unloaded now: read the module's report directly.
    data = mofa_sample_monitor.report()
    assert data["events"]["by_variant"]["PluginUnloaded"] == 2
    assert data["states"] == {"monitor": "Unloaded", "probe": "Unloaded"}
    assert data["uptime_seconds"] is None


async def test_reset_command(manager: PluginManager) -> None:
    await manager.start_all()
    assert (await report(manager))["events"]["total"] > 0
    data = json.loads(await manager.execute("monitor", "reset"))
    assert data["events"]["total"] == 0
    assert data["uptime_seconds"] is not None


async def test_unknown_command_is_rejected(manager: PluginManager) -> None:
    await manager.start_all()
    with pytest.raises(PluginExecutionError, match="unknown command 'dance'"):
        await manager.execute("monitor", "dance")
    assert manager.state("monitor") == PluginState.RUNNING
    assert "events" in json.loads(await manager.execute("monitor", ""))


async def test_stats(manager: PluginManager) -> None:
    await manager.start_all()
    assert (await manager.stats())["monitor"] == {"events": 4}
    assert (await manager.health_check())["monitor"] is True


def test_reset_forgets_everything() -> None:
    mofa_sample_monitor.on_plugin_event(PluginEvent.PluginLoaded(plugin_id="x"))
    assert mofa_sample_monitor.report()["events"]["total"] == 1
    mofa_sample_monitor.reset()
    assert mofa_sample_monitor.report()["events"] == {"total": 0, "by_variant": {}, "by_plugin": {}}
