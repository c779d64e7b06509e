"""The hot reloader: watches each plugin's code, applies the strategy, counts attempts.

One worker task per plugin waits for changes, applies the reload strategy
(immediate, debounced with an upper bound, manual, on idle), the attempt
limit and the cooldown, then runs an :class:`~._transaction.Attempt` under a
lock shared by all plugins, so that only one reload changes ``sys.modules``
at a time. Two watchers feed the workers: one over the plugins' package
folders (recursive), one over the folders that hold them and the site
folders (not recursive), which sees packages replaced whole, single-module
plugins saved by renaming, and distributions installed or removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import attrs

from mofa_kernel._adapters import offers
from mofa_kernel._errors import PluginError, PluginLoadError
from mofa_kernel._events import KernelEvent, PluginEvent

from ._code import (
    CodeUnit,
    NotReloadable,
    Recipe,
    entry_point_root,
    target_of,
)
from ._folders import WatchedFolders
from ._installs import Installs
from ._tasks import wait_event
from ._tracker import Tracker
from ._transaction import Attempt, AttemptResult
from ._watch import Changes

if TYPE_CHECKING:
    from mofa_kernel._records import PluginRecord
    from mofa_kernel._reload_config import HotReloadConfig
    from mofa_kernel._runtime import ReloadPort

    from ._code import Fingerprint
    from ._host import ReloadHost

__all__ = ["RESTART_REQUIRED", "STALE", "HotReloader"]

#: ``PluginEvent.Custom`` type: the plugin's code changed but the strategy is manual.
STALE: Final = "mofa.reload.stale"
#: ``PluginEvent.Custom`` type: a compiled extension changed; only a restart loads it.
RESTART_REQUIRED: Final = "mofa.reload.restart_required"

#: A debounced reload waits for quiet, but never longer than this many times its delay.
DEBOUNCE_CAP_FACTOR: Final = 5.0
#: On-idle waits at most the plugin's deadline, or this long when it has none.
ON_IDLE_CAP: Final = 30.0
_DIST_SUFFIXES: Final = (".dist-info", ".egg-info", ".egg-link", ".pth")


class HotReloader:
    """Reloads one manager's plugins when their code changes (see ``docs/hot-reload.md``).

    Made by :attr:`PluginManager.reloader <mofa_kernel.PluginManager.reloader>`;
    the manager's ``reload``, ``start_hot_reload``, ``stop_hot_reload`` and
    ``hot_reloading`` delegate here. The strategy and limits are read from
    ``manager.hot_reload`` whenever they are needed.
    """

    def __init__(self, manager: ReloadHost, port: ReloadPort) -> None:
        self._manager = manager
        self._port = port
        self._trackers: dict[str, Tracker] = {}
        self._lock = asyncio.Lock()
        self._running = False
        self._watch_installs = False
        self._folders = WatchedFolders(
            on_code=self._code_changed,
            on_folders=self._folder_changed,
            on_failure=self._watch_failed,
        )
        self._retiring: set[asyncio.Task[None]] = set()
        self._chores: set[asyncio.Task[Any]] = set()
        self._installs = Installs(
            manager,
            port,
            self._trackers,
            self._lock,
            track=lambda pid: self._track(pid, baseline=True),
            rearm=lambda: self._arm(rearm_roots=True),
        )

    @property
    def config(self) -> HotReloadConfig:
        """The manager's hot-reload settings, read afresh at every use."""
        return self._manager.hot_reload

    @property
    def running(self) -> bool:
        """Whether the watchers are on."""
        return self._running

    def stale(self) -> list[str]:
        """The plugins whose code changed while the strategy is manual, awaiting ``reload``."""
        return [pid for pid, tracker in self._trackers.items() if tracker.stale]

    def watched_paths(self) -> tuple[Path, ...]:
        """Every folder watched now (plugin packages, the folders holding them, site folders)."""
        return self._folders.paths

    def problems(self) -> dict[str, str]:
        """Plugin id -> why its code cannot be reloaded, for the plugins that cannot."""
        return {pid: t.problem for pid, t in self._trackers.items() if t.problem is not None}

    # -- on and off -----------------------------------------------------------------------

    async def start(self, *, watch_installs: bool | None = None) -> None:
        """Arm the watchers over every plugin's code; return once they are in place."""
        if self._running:
            return
        manager = self._manager
        if watch_installs is None:
            watch_installs = any(record.source is not None for record in manager.records())
        self._watch_installs = watch_installs
        for pid in manager.plugin_ids():
            self._track(pid, baseline=True)
        self._running = True
        manager.add_listener(self._on_event)
        for tracker in self._trackers.values():
            self._start_worker(tracker)
        try:
            await self._arm()
        except BaseException:
            await self.stop()
            raise
        now = asyncio.get_running_loop().time()
        for tracker in self._trackers.values():
            tracker.note(None, now)  # a change made while the watchers were being set

    async def stop(self) -> None:
        """Disarm the watchers; a reload in progress finishes, old instances finish retiring."""
        if not self._running:
            await self._finish_retiring()
            return
        self._running = False
        self._manager.remove_listener(self._on_event)
        installs = await self._installs.stop()
        async with self._lock:
            tasks = [t.worker for t in self._trackers.values() if t.worker is not None]
            tasks += list(self._chores)
            if installs is not None:
                tasks.append(installs)
            for task in tasks:
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for tracker in self._trackers.values():
            tracker.worker = None
        await self._folders.stop()
        await self._finish_retiring()

    @contextlib.asynccontextmanager
    async def watching(self, *, watch_installs: bool | None = None) -> AsyncIterator[HotReloader]:
        """Watch for the duration of an ``async with`` block."""
        await self.start(watch_installs=watch_installs)
        try:
            yield self
        finally:
            await self.stop()

    async def _finish_retiring(self) -> None:
        while self._retiring:
            under_way = list(self._retiring)
            await asyncio.gather(*under_way, return_exceptions=True)
            self._retiring.difference_update(under_way)  # done, whether or not their callbacks ran

    # -- plugins --------------------------------------------------------------------------

    def _track(self, plugin_id: str, *, baseline: bool) -> Tracker:
        """Start following ``plugin_id``'s code; ``baseline``: what is on disk serves now."""
        tracker = self._trackers.get(plugin_id)
        if tracker is not None:
            return tracker
        record = self._manager.record(plugin_id)  # PluginNotFoundError for an unknown id
        tracker = Tracker(plugin_id)
        try:
            _locate_code(tracker, self._manager, self._port, record)
        except NotReloadable as exc:
            tracker.problem = f"plugin {plugin_id!r} cannot be reloaded: {exc}"
        if baseline and tracker.unit is not None and record.status == "registered":
            tracker.loaded = tracker.unit.fingerprint()
        self._trackers[plugin_id] = tracker
        if self._running:
            self._start_worker(tracker)
        return tracker

    def _start_worker(self, tracker: Tracker) -> None:
        if tracker.worker is None and tracker.unit is not None:
            tracker.worker = asyncio.get_running_loop().create_task(
                self._work(tracker), name=f"mofa-reload-{tracker.plugin_id}"
            )

    def _on_event(self, event: KernelEvent) -> None:
        # A plugin loaded after hot reload started (registered later, or discovered) is watched.
        if (
            self._running
            and isinstance(event, PluginEvent.PluginLoaded)
            and event.plugin_id not in self._trackers
        ):
            tracker = self._track(event.plugin_id, baseline=True)
            self._chore(self._arm_for(tracker))

    async def _arm_for(self, tracker: Tracker) -> None:
        """Watch a newly tracked plugin; then look for changes made before the watch was set."""
        await self._arm()
        tracker.note(None, asyncio.get_running_loop().time())

    def _chore(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._chores.add(task)
        task.add_done_callback(self._chores.discard)

    # -- manual reloads -------------------------------------------------------------------

    async def reload(self, plugin_id: str, *, force: bool = False) -> bool:
        """Reload now; ``True`` if new code serves, ``False`` if unchanged (refreshed instead).

        Raises a :class:`~mofa_kernel.PluginError` subclass when the attempt
        fails (the previous version keeps serving). A plugin first reloaded
        before hot reloading started is always imported afresh.
        """
        tracker = self._track(plugin_id, baseline=False)
        if tracker.problem is not None:
            raise PluginLoadError(tracker.problem, plugin_id=plugin_id, hook="reload")
        async with self._lock:
            tracker.pending = False
            tracker.stale = False
            tracker.first_change = None
            unit = tracker.unit
            assert unit is not None
            fingerprint = unit.fingerprint()
            if not force and not tracker.force and self._unchanged(tracker, fingerprint):
                return await self._same_code(tracker, fingerprint, manual=True)
            outcome = await self._attempt(tracker, fingerprint)
        if outcome.retired is not None:
            await outcome.retired
        if outcome.error is not None:
            raise outcome.error
        return True

    def _differs(self, tracker: Tracker) -> bool:
        """Whether the plugin's files differ from what serves (or that is not known)."""
        if tracker.unit is None or tracker.loaded is None or tracker.force:
            return True
        return tracker.unit.fingerprint() != tracker.loaded

    def _unchanged(self, tracker: Tracker, fingerprint: Fingerprint) -> bool:
        if tracker.loaded is None or fingerprint.code != tracker.loaded.code:
            return False
        if tracker.in_worker and fingerprint.native != tracker.loaded.native:
            return False  # a new worker process loads a changed compiled extension
        record = self._manager.record(tracker.plugin_id)
        return record.status == "registered" and not record.state.is_error

    async def _same_code(self, tracker: Tracker, fingerprint: Fingerprint, *, manual: bool) -> bool:
        """The sources are as loaded: report a changed extension, refresh for changed data."""
        loaded = tracker.loaded
        assert loaded is not None
        if fingerprint.native != loaded.native and self._native_loaded(tracker):
            self._restart_required(tracker, fingerprint)
            if manual:
                raise PluginLoadError(
                    f"plugin {tracker.plugin_id!r}: a compiled extension changed; "
                    f"restart the host to load it",
                    plugin_id=tracker.plugin_id,
                    hook="reload",
                )
            return False
        if manual or fingerprint.data != loaded.data:
            tracker.loaded = fingerprint
            await self._refresh(tracker, manual=manual)
        return False

    def _native_loaded(self, tracker: Tracker) -> bool:
        return tracker.unit is not None and tracker.unit.loaded_native()

    def _restart_required(self, tracker: Tracker, fingerprint: Fingerprint) -> None:
        loaded = tracker.loaded
        changed = fingerprint.changed_natives(loaded) if loaded is not None else []
        where = changed[0] if changed else tracker.report_path()
        tracker.loaded = attrs.evolve(
            loaded or fingerprint, native=fingerprint.native, natives=fingerprint.natives
        )
        self._manager.emit(
            PluginEvent.Custom(
                plugin_id=tracker.plugin_id, event_type=RESTART_REQUIRED, data=os.fsencode(where)
            )
        )

    def _attempt_of(
        self, tracker: Tracker, number: int, fingerprint: Fingerprint | None
    ) -> Attempt:
        return Attempt(self._manager, self._port, self.config, tracker, attempt=number,
                       fingerprint=fingerprint, retiring=self._retiring)  # fmt: skip

    async def _refresh(self, tracker: Tracker, *, manual: bool) -> None:
        """Code unchanged: ask the serving instance to re-read what it caches."""
        manager = self._manager
        plugin = manager.get(tracker.plugin_id)
        if not offers(plugin, "refresh"):
            return
        error = await self._attempt_of(tracker, 1, None).refresh(plugin)
        if error is not None and manual:
            raise error

    async def _attempt(self, tracker: Tracker, fingerprint: Fingerprint) -> AttemptResult:
        """One reload attempt (the caller holds the lock); counts it against its content."""
        if (
            tracker.loaded is not None
            and fingerprint.native != tracker.loaded.native
            and self._native_loaded(tracker)
        ):
            self._restart_required(tracker, fingerprint)
            error = PluginLoadError(
                f"plugin {tracker.plugin_id!r}: a compiled extension changed; "
                f"restart the host to load it",
                plugin_id=tracker.plugin_id,
                hook="reload",
            )
            return AttemptResult(False, error, retryable=False)
        number = tracker.failures.get(fingerprint.code, 0) + 1
        outcome = await self._attempt_of(tracker, number, fingerprint).run()
        if outcome.reloaded:
            tracker.loaded = fingerprint
            tracker.failures.pop(fingerprint.code, None)
            tracker.retry_at.pop(fingerprint.code, None)
            tracker.force = False
        else:
            limit = self.config.max_reload_attempts
            tracker.failures[fingerprint.code] = number if outcome.retryable else max(number, limit)
            loop = asyncio.get_running_loop()
            tracker.retry_at[fingerprint.code] = loop.time() + self.config.reload_cooldown
        return outcome

    # -- automatic reloads ----------------------------------------------------------------

    async def _work(self, tracker: Tracker) -> None:
        """A plugin's worker: wait for changes, apply the strategy, attempt, retry."""
        while True:
            await tracker.wake.wait()
            tracker.wake.clear()
            while tracker.pending:
                if not await self._strategy_allows(tracker):
                    break
                await self._installs.quiet.wait()
                try:
                    wait = await self._automatic(tracker)
                except Exception as exc:  # noqa: BLE001 - reported; the worker must live on
                    tracker.pending = False
                    self._manager.emit(
                        PluginEvent.PluginError(
                            plugin_id=tracker.plugin_id,
                            error=f"hot reload: {type(exc).__name__}: {exc}",
                        )
                    )
                    continue
                if wait is not None:
                    await self._nap(tracker, wait)

    async def _nap(self, tracker: Tracker, seconds: float) -> None:
        """Sleep ``seconds``, or until the next change of this plugin."""
        await wait_event(tracker.wake, seconds)
        tracker.wake.clear()

    async def _strategy_allows(self, tracker: Tracker) -> bool:
        """Wait as the strategy says; ``False`` when the change must wait for a request."""
        strategy = self.config.strategy
        if strategy.variant == "Manual":
            tracker.pending = False
            if not tracker.stale and self._differs(tracker):
                tracker.stale = True
                self._manager.emit(
                    PluginEvent.Custom(
                        plugin_id=tracker.plugin_id,
                        event_type=STALE,
                        data=os.fsencode(tracker.report_path()),
                    )
                )
            return False
        if strategy.variant == "Debounced":
            delay = strategy.delay or 0.0
            loop = asyncio.get_running_loop()
            while True:
                now = loop.time()
                first = tracker.first_change if tracker.first_change is not None else now
                due = min(tracker.last_change + delay, first + delay * DEBOUNCE_CAP_FACTOR)
                if now >= due:
                    break
                await self._nap(tracker, due - now)
        elif strategy.variant == "OnIdle":
            timeout = self._manager.record(tracker.plugin_id).timeout
            with contextlib.suppress(PluginError):  # gone meanwhile: the attempt will say so
                await self._manager.wait_idle(
                    tracker.plugin_id, timeout if timeout is not None else ON_IDLE_CAP
                )
        return True

    async def _automatic(self, tracker: Tracker) -> float | None:
        """Handle a pending change; return seconds to wait before looking again, if any."""
        async with self._lock:
            if not tracker.pending or tracker.unit is None:
                tracker.pending = False
                return None
            if tracker.plugin_id not in self._manager.plugin_ids():
                tracker.pending = False
                return None
            fingerprint = tracker.unit.fingerprint()
            if not tracker.force and self._unchanged(tracker, fingerprint):
                tracker.pending = False
                await self._same_code(tracker, fingerprint, manual=False)
                return None
            if (
                tracker.loaded is not None
                and fingerprint.code == tracker.loaded.code
                and not tracker.force
                and self._manager.state(tracker.plugin_id).is_error
            ):
                tracker.pending = False  # it failed at run time, not for lack of new code
                return None
            failures = tracker.failures.get(fingerprint.code, 0)
            limit = self.config.max_reload_attempts
            if failures >= limit:
                tracker.pending = False  # these bytes have had all their attempts
                return None
            due = tracker.retry_at.get(fingerprint.code, 0.0) - asyncio.get_running_loop().time()
            if due > 0:
                return due  # the cooldown delays the pending reload; it does not drop it
            tracker.pending = False
            tracker.first_change = None
            outcome = await self._attempt(tracker, fingerprint)
            if (
                outcome.error is not None
                and outcome.retryable
                and failures + 1 < limit
                and self.config.strategy.variant != "Manual"
            ):
                tracker.pending = True
                return self.config.reload_cooldown
            return None

    # -- watching -------------------------------------------------------------------------

    async def _arm(self, *, rearm_roots: bool = False) -> None:
        """(Re)start the watchers whose folders changed; ``rearm_roots`` restarts it anyway."""
        async with self._folders.lock:
            if not self._running:
                return
            units = [t.unit for t in self._trackers.values() if t.unit is not None]
            await self._folders.arm(
                units, watch_installs=self._watch_installs, rearm_roots=rearm_roots
            )

    def _watch_failed(self, exc: BaseException) -> None:
        # A watched folder vanished under the watcher: arm again over what exists now.
        if self._running:
            self._chore(self._arm(rearm_roots=True))

    def _code_changed(self, changes: Changes) -> None:
        if not self._running:
            return
        now = asyncio.get_running_loop().time()
        for _, raw in changes:
            path = Path(raw)
            for tracker in self._trackers.values():
                if tracker.unit is not None and tracker.unit.owns(path):
                    if tracker.installed and self._watch_installs:
                        # pip at work, most likely: let it finish, then look at versions first.
                        self._installs.activity(distributions=True)
                    tracker.note(path, now)

    def _folder_changed(self, changes: Changes) -> None:
        if not self._running:
            return
        now = asyncio.get_running_loop().time()
        for _, raw in changes:
            path = Path(raw)
            if path.name.endswith(_DIST_SUFFIXES):
                if self._watch_installs:
                    self._installs.activity(distributions=True)
                continue
            for tracker in self._trackers.values():
                unit = tracker.unit
                if unit is None:
                    continue
                if path in unit.dirs:
                    if self._folders.replaced(path):
                        self._installs.activity(distributions=False)  # replaced whole: re-arm
                    tracker.note(path, now)
                elif path in unit.files:
                    tracker.note(path, now)


def _locate_code(
    tracker: Tracker, manager: ReloadHost, port: ReloadPort, record: PluginRecord
) -> None:
    """Set how ``tracker``'s plugin is rebuilt and which code it follows; raises
    :class:`NotReloadable` when that cannot be known."""
    spec = port.worker_spec(tracker.plugin_id)
    if spec is not None:
        # Its code is never imported here: it is found on disk, a new worker imports it.
        module = spec.entry_point.partition(":")[0]
        tracker.recipe = Recipe("source", module)
        tracker.in_worker = True
        root = entry_point_root(module)
    elif record.source is not None:
        tracker.recipe = Recipe("source", record.source.module)
        root = entry_point_root(record.source.module)
    else:
        tracker.recipe = Recipe.of(target_of(manager.get(tracker.plugin_id)))
        root = tracker.recipe.module
    tracker.unit = CodeUnit.of_module(root)
    tracker.installed = _installed_copy(tracker.unit, record)


def _installed_copy(unit: CodeUnit, record: PluginRecord) -> bool:
    """Whether the plugin's code is an installed copy: next to its distribution's dist-info."""
    source = record.source
    if source is None or source.distribution is None:
        return False
    from mofa_kernel._source import normalize_name

    wanted = normalize_name(source.distribution)
    try:
        names = os.listdir(unit.base)
    except OSError:
        return False
    return any(
        name.endswith(".dist-info") and normalize_name(name.split("-")[0]) == wanted
        for name in names
    )
