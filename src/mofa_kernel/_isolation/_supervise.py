"""Restarting isolated plugins after their workers die: :class:`Supervisor`.

The supervisor hears a proxy's :meth:`~IsolatedPlugin.on_worker_exit`, has
the runtime record the crash (error state, ``PluginError``, dependents
down), and asks it to bring the plugin back while the plugin's
:class:`RestartPolicy` allows. What it needs from the runtime is the two
verbs of :class:`SupervisionPort` (``mofa_kernel._runtime._supervision``
provides them).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Protocol

from mofa_kernel._errors import PluginError

from ._exit import RestartPolicy, WorkerExit

if TYPE_CHECKING:
    from ._proxy import IsolatedPlugin

__all__ = ["SupervisionPort", "Supervisor"]


class SupervisionPort(Protocol):
    """What a supervisor asks of the runtime that owns the plugins' states."""

    def crashed(self, plugin_id: str, message: str) -> None:
        """Record that the plugin's worker ended (``message`` says how), unless already recorded:
        error state, a ``PluginError`` event, its dependents taken down."""

    async def restart(self, plugin_id: str) -> None:
        """Bring the plugin from its error state back to RUNNING: unload, load, start."""


class Supervisor:
    """Watches isolated plugins and restarts them by their policies."""

    def __init__(self, port: SupervisionPort) -> None:
        self.port = port
        self._tasks: set[asyncio.Task[None]] = set()
        #: The proxy that serves each plugin now; a hot reload replaces it with a new one.
        self._current: dict[str, IsolatedPlugin] = {}
        #: Crash reports and restarts, in order, for whoever wants to look (tests, stats).
        self.history: list[tuple[str, str]] = []

    def watch(self, proxy: IsolatedPlugin, policy: RestartPolicy | None = None) -> None:
        """Handle every unasked end of ``proxy``'s workers under ``policy`` (default 3 in 60 s).

        ``proxy`` replaces the plugin's previous proxy (after a hot reload): the
        end of the previous one's worker, still finishing its calls, is no crash.
        """
        rules = policy if policy is not None else RestartPolicy()
        self._current[proxy.metadata.id] = proxy
        proxy.on_worker_exit(lambda ended: self._crashed(proxy, rules, ended))

    async def shut_down(self) -> None:
        """End the workers still running (a plugin discovered and never unloaded)."""
        await self.settle()
        for proxy in list(self._current.values()):
            await proxy.shut_down()

    def _crashed(self, proxy: IsolatedPlugin, policy: RestartPolicy, ended: WorkerExit) -> None:
        plugin_id = proxy.metadata.id
        if self._current.get(plugin_id) is not proxy:
            return  # a previous version's worker: its calls fail, the plugin serves on
        self.port.crashed(plugin_id, str(ended))
        if not policy.allow():
            self.history.append((plugin_id, "given up"))
            return
        self.history.append((plugin_id, "restarting"))
        task = asyncio.get_running_loop().create_task(self._restart(plugin_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _restart(self, plugin_id: str) -> None:
        try:
            await self.port.restart(plugin_id)
        except PluginError:
            return  # recorded on the plugin; a worker that died again reports once more

    async def settle(self) -> None:
        """Wait for the restarts under way."""
        while self._tasks:
            under_way = list(self._tasks)
            await asyncio.gather(*under_way, return_exceptions=True)
            self._tasks.difference_update(under_way)
