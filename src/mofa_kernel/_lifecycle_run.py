"""Driving one plugin through its whole lifecycle for a test: :func:`run_lifecycle`.

Also the helpers the conformance check shares with it: how a plugin, its
settings and its companions are given by a test author, and how they are
registered and started in a fresh manager. No pytest needed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from ._events import KernelEvent, PluginEvent
from ._metadata import PluginConfig
from ._plugin import AgentPlugin
from ._types import PluginState

if TYPE_CHECKING:
    from ._manager import PluginManager

__all__ = [
    "LifecycleRun",
    "config_of",
    "describe",
    "instance_of",
    "register_all",
    "run_lifecycle",
    "short",
    "start_dependencies",
]


# -- plugins, settings and companions as the author gives them ------------------------------


def instance_of(plugin: object) -> object:
    """An ``AgentPlugin`` subclass is instantiated with no arguments; anything else is kept."""
    if isinstance(plugin, type) and issubclass(plugin, AgentPlugin):
        return plugin()
    return plugin


def config_of(
    settings: Mapping[str, object] | PluginConfig | None, config: PluginConfig | None = None
) -> PluginConfig | None:
    if settings is not None and config is not None:
        raise TypeError("give settings= or config=, not both")
    if isinstance(settings, PluginConfig):
        return settings
    if settings is not None:
        return PluginConfig(dict(settings))
    return config


def _companion(item: object) -> tuple[object, PluginConfig | None]:
    """A companion is a plugin, or a ``(plugin, settings-or-config)`` pair."""
    if isinstance(item, tuple):
        if len(item) != 2:
            raise TypeError("a companion is a plugin or a (plugin, settings) pair")
        plugin, settings = item
        return instance_of(plugin), config_of(settings)
    return instance_of(item), None


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def short(data: object, limit: int = 200) -> str:
    text = json.dumps(data, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def register_all(
    manager: PluginManager,
    plugin: object,
    config: PluginConfig | None,
    companions: Iterable[object],
) -> str:
    for item in companions:
        companion, companion_config = _companion(item)
        manager.register(companion, config=companion_config)
    return manager.register(instance_of(plugin), config=config)


async def start_dependencies(manager: PluginManager, plugin_id: str) -> None:
    """Bring up, in order, the registered plugins that start before ``plugin_id``."""
    problem = manager.dependency_error(plugin_id)
    if problem is not None:
        raise problem
    order = manager.start_order()
    for other in order[: order.index(plugin_id)]:
        await manager.load(other)
        await manager.start(other)


# -- driving a plugin ------------------------------------------------------------------------


@attrs.frozen
class LifecycleRun:
    """What :func:`run_lifecycle` saw.

    ``outputs`` holds execute's answers, one per input; ``transitions`` every
    ``(old, new)`` state change of the plugin, in order; ``events`` every event
    the kernel emitted; ``healthy`` the health check while running; ``stats``
    the plugin's stats after the inputs.
    """

    plugin_id: str
    outputs: tuple[str, ...]
    transitions: tuple[tuple[PluginState, PluginState], ...]
    events: tuple[KernelEvent, ...]
    healthy: bool
    stats: dict[str, Any]


async def run_lifecycle(
    plugin: object,
    *,
    inputs: Iterable[str] = (),
    settings: Mapping[str, object] | None = None,
    config: PluginConfig | None = None,
    companions: Iterable[object] = (),
    timeout: float = 10.0,
) -> LifecycleRun:
    """Drive ``plugin`` through its whole lifecycle in a fresh manager and report what happened.

    The plugin is loaded, initialised, started, health-checked, given each of
    ``inputs``, paused, resumed, stopped and unloaded. ``companions`` are the
    plugins it depends on (each a plugin or a ``(plugin, settings)`` pair);
    they are started first and shut down last. A failure raises the kernel's
    error (:class:`~mofa_kernel.PluginError`), after everything is shut down.
    """
    from ._manager import PluginManager

    events: list[KernelEvent] = []
    manager = PluginManager(timeout=timeout)
    manager.add_listener(events.append)
    async with manager:
        pid = register_all(manager, plugin, config_of(settings, config), companions)
        await start_dependencies(manager, pid)
        await manager.load(pid)
        await manager.init_plugin(pid)
        await manager.start(pid)
        healthy = (await manager.health_check())[pid]
        outputs = tuple([await manager.execute(pid, text) for text in inputs])
        stats = (await manager.stats())[pid]
        for step in (manager.pause, manager.resume, manager.stop, manager.unload):
            await step(pid)
        await manager.settle()
    transitions = tuple(
        (event.old_state, event.new_state)
        for event in events
        if isinstance(event, PluginEvent.StateChanged) and event.plugin_id == pid
    )
    return LifecycleRun(pid, outputs, transitions, tuple(events), healthy, stats)
