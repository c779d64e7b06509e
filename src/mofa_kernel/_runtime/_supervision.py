"""Isolated plugins in the runtime: a worker's death recorded as a failure, then a restart.

An isolated plugin (:mod:`mofa_kernel._isolation`) is driven like any other;
what only a process can do, end between calls, is reported by its proxy's
``on_worker_exit``. :class:`Supervision` is the runtime's side of that port:
it records the end through the lifecycle (error state, ``PluginError``,
dependents down) and restarts the plugin (``Error -> Unloaded -> Loading ->
Loaded -> Running``) while the plugin's ``[plugins.ID]`` restart policy allows; the
dependents its end stopped are brought back after it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from mofa_kernel._adapters import is_isolated
from mofa_kernel._events import PluginEvent
from mofa_kernel._isolation._setup import restart_policy
from mofa_kernel._isolation._supervise import Supervisor
from mofa_kernel._types import PluginState

from ._lifecycle import Lifecycle
from ._registry import Registry
from ._scheduler import Scheduler

if TYPE_CHECKING:
    from mofa_kernel._config import KernelSettings
    from mofa_kernel._isolation._proxy import IsolatedPlugin

__all__ = ["Supervision"]


class Supervision:
    """The runtime's supervision port, and the supervisor that uses it."""

    def __init__(
        self,
        registry: Registry,
        lifecycle: Lifecycle,
        emit: Callable[[PluginEvent], None],
        settings: Callable[[], KernelSettings],
        scheduler: Scheduler,
    ) -> None:
        self._registry = registry
        self._lifecycle = lifecycle
        self._scheduler = scheduler
        self._emit = emit
        self._settings = settings
        self.supervisor = Supervisor(self)

    def watch(self, plugin_id: str) -> None:
        """Supervise ``plugin_id`` if it is isolated, under its ``[plugins.ID]`` policy."""
        entry = self._registry.entries.get(plugin_id)
        if entry is None or not is_isolated(entry.plugin):
            return
        proxy = cast("IsolatedPlugin", entry.plugin)
        proxy.deadline = entry.timeout
        self.supervisor.watch(proxy, restart_policy(plugin_id, self._settings()))

    def crashed(self, plugin_id: str, message: str) -> None:
        entry = self._registry.get(plugin_id)
        if entry.state.is_error or entry.state is PluginState.UNLOADED:
            return  # the call that met the end has recorded it already
        was_up = entry.state in (PluginState.RUNNING, PluginState.PAUSED)
        entry.error = message
        self._lifecycle.set_state(entry, PluginState.error(message))
        self._emit(PluginEvent.PluginError(plugin_id=plugin_id, error=message))
        if was_up:
            self._lifecycle.on_down(plugin_id)

    async def restart(self, plugin_id: str) -> None:
        entry = self._registry.get(plugin_id)
        if entry.state.is_error:
            await self._lifecycle.unload(entry)
        await self._lifecycle.load(entry)
        await self._lifecycle.start(entry)
        # The dependents its crash stopped come back with it (each failure is reported).
        waiting = self._scheduler.waiting_for([plugin_id])
        if waiting:
            await self._scheduler.bring_up(waiting)
