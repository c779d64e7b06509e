"""Installs, upgrades and uninstalls seen while hot reload runs.

When the watchers see distributions come and go (pip at work), :class:`Installs`
waits until the activity has settled, then compares the installed entry
points with the manager's plugins: a new plugin is discovered and started,
an upgraded one is reloaded, a removed one is taken down (its dependents
first) and forgotten. Plugins taken down because a dependency left come back
when it returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final

from mofa_kernel._errors import PluginError
from mofa_kernel._events import ReloadEvent
from mofa_kernel._types import PluginState

from ._code import CodeUnit, current_namespaces
from ._tasks import cancel_and_wait, tasks_of, wait_event
from ._tracker import Tracker

if TYPE_CHECKING:
    from mofa_kernel._records import PluginRecord
    from mofa_kernel._runtime import ReloadPort
    from mofa_kernel._source import PluginSource

    from ._host import ReloadHost

__all__ = ["INSTALL_SETTLE", "Installs"]

#: Seconds without install activity before installs and removals are acted on.
INSTALL_SETTLE: Final = 0.5


class Installs:
    """Acts on installs and uninstalls once they settle; see the module docstring.

    ``trackers`` and ``lock`` are the reloader's own; ``track`` starts
    watching a new plugin, ``rearm`` re-arms the watchers afterwards.
    """

    def __init__(
        self,
        manager: ReloadHost,
        port: ReloadPort,
        trackers: dict[str, Tracker],
        lock: asyncio.Lock,
        *,
        track: Callable[[str], object],
        rearm: Callable[[], Awaitable[None]],
    ) -> None:
        self._manager = manager
        self._port = port
        self._trackers = trackers
        self._lock = lock
        self._track = track
        self._rearm = rearm
        #: Set while nothing is being installed; reloads wait for it.
        self.quiet = asyncio.Event()
        self.quiet.set()
        self._due = 0.0
        self._seen = asyncio.Event()
        self._dists_changed = False
        self._task: asyncio.Task[None] | None = None
        self._working = False

    def activity(self, *, distributions: bool) -> None:
        """Something is installing, removing or replacing packages: wait until it is done."""
        self._dists_changed |= distributions
        self._seen.set()
        self._due = asyncio.get_running_loop().time() + INSTALL_SETTLE
        self.quiet.clear()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._settle(), name="mofa-reload-installs"
            )

    async def stop(self) -> asyncio.Task[None] | None:
        """Stop acting on installs: one half done is finished, a wait is cancelled. Returns
        the task to await."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            if self._working:
                await asyncio.gather(task, return_exceptions=True)  # a plugin half-added
            else:
                task.cancel()
        self.quiet.set()
        return task

    async def _settle(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                while (delay := self._due - loop.time()) > 0:
                    self._seen.clear()
                    await wait_event(self._seen, delay)
                due = self._due
                self._working = True
                try:
                    if self._dists_changed:
                        self._dists_changed = False
                        await self._rescan()
                finally:
                    self._working = False
                await self._rearm()
                now = loop.time()
                for tracker in self._trackers.values():
                    tracker.note(None, now)  # look whether anything changed while unwatched
                if self._due == due:
                    break  # nothing new happened while we worked
        finally:
            self.quiet.set()

    async def _rescan(self) -> None:
        """Compare installed entry points with the manager's plugins; act on the difference."""
        from mofa_kernel._discovery import scan

        importlib.invalidate_caches()
        claims: dict[str, list[PluginSource]] = {}
        for source in scan():
            claims.setdefault(source.plugin_id, []).append(source)
        known = {record.plugin_id: record for record in self._manager.records()}
        for pid, record in known.items():
            if record.source is None:
                continue
            found = claims.get(pid, [])
            if not found:
                await self._removed(pid, record)
            elif len(found) == 1 and found[0] != record.source and record.status == "registered":
                self._port.set_source(pid, found[0])
                tracker = self._trackers.get(pid)
                if tracker is not None:
                    tracker.force = True  # an upgrade is a reload, whatever the files say
                    tracker.note(found[0].path, asyncio.get_running_loop().time())
        new = [pid for pid in claims if pid not in known]
        if new:
            await self._discovered(new)

    async def _discovered(self, new: list[str]) -> None:
        """Register, announce and start the plugins of newly installed distributions; then
        bring back what was taken down when they left."""
        manager = self._manager
        report = manager.discover()
        wanted: list[str] = []
        for record in report.records:
            if record.plugin_id not in new:
                continue
            where = record.source.path if record.source is not None else None
            manager.emit(ReloadEvent.PluginDiscovered(path=where or Path(record.plugin_id)))
            if record.status == "registered":
                self._track(record.plugin_id)
                if record.enabled and record.config.auto_start:
                    wanted.append(record.plugin_id)
        if wanted:
            await manager.start_all(wanted)  # each failure is recorded and reported
        await self._port.bring_back(new)

    async def _removed(self, plugin_id: str, record: PluginRecord) -> None:
        """A plugin's distribution was uninstalled: take the plugin down and forget it."""
        manager = self._manager
        tracker = self._trackers.pop(plugin_id, None)
        async with self._lock:
            if tracker is not None and tracker.worker is not None:
                tracker.worker.cancel()
            await self._port.take_down_dependents(plugin_id, "was uninstalled")
            if record.status == "registered":
                plugin = manager.get(plugin_id)
                with contextlib.suppress(PluginError):  # recorded by the manager; it goes anyway
                    if manager.state(plugin_id) in (PluginState.RUNNING, PluginState.PAUSED):
                        await manager.stop(plugin_id)
                unit = tracker.unit if tracker is not None else None
                namespaces = current_namespaces(unit) if unit is not None else set()
                await cancel_and_wait(tasks_of(plugin, namespaces), record.timeout)
                state = manager.state(plugin_id)
                with contextlib.suppress(PluginError):  # as above
                    if state == PluginState.LOADED or state.is_error:
                        await manager.unload(plugin_id)
            self._port.forget(plugin_id)
            if tracker is not None and tracker.unit is not None:
                self._drop_modules(tracker.unit)
        where = record.source.path if record.source is not None else None
        manager.emit(ReloadEvent.PluginRemoved(plugin_id=plugin_id, path=where or Path(plugin_id)))

    def _drop_modules(self, unit: CodeUnit) -> None:
        """Forget an uninstalled plugin's modules, unless another plugin's code is there too."""
        if any(t.unit is not None and t.unit.root == unit.root for t in self._trackers.values()):
            return
        for name in unit.module_names():
            del sys.modules[name]
