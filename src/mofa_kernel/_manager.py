"""The :class:`PluginManager`: the public face of the runtime.

The manager composes the runtime's parts (:mod:`mofa_kernel._runtime`): the
registry of plugins, the plugin caller (the only code that runs plugin code),
the lifecycle (the only writer of a plugin's state) and the scheduler (the
only code that orders several plugins). Its own methods register and
discover plugins, answer questions, carry events, and hand each verb to the
part that owns it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ._adapters import is_isolated
from ._context import PluginContext, SharedState
from ._deadline import Watchdog
from ._errors import (
    DependencyCycleError,
    DependencyError,
    MissingDependencyError,
    PluginError,
    PluginNotFoundError,
)
from ._event_bus import EventBus, Subscription
from ._events import KernelEvent, PluginEvent
from ._metadata import PluginConfig
from ._plugin import AgentPlugin
from ._records import DiscoveryReport, LifecycleReport, PluginRecord
from ._reload_config import HotReloadConfig
from ._runtime import (
    Entry,
    Intake,
    Lifecycle,
    Observers,
    PluginCaller,
    Registry,
    ReloadPort,
    Scheduler,
    describe,
)
from ._types import PluginState

if TYPE_CHECKING:
    from ._config import KernelSettings
    from ._reload import HotReloader
    from ._runtime._supervision import Supervision

__all__ = ["PluginManager"]


class PluginManager:
    """Discovers, orders and drives plugins.

    Reads no file and imports no plugin when constructed. ``timeout`` is the
    default deadline in seconds for every lifecycle call and execute
    (``None`` for none). Use it as an async context manager so that leaving
    the block shuts every plugin down::

        async with PluginManager() as manager:
            manager.discover()
            await manager.start_all()
            print(await manager.execute("calculator", "2 * (3 + 4)"))
    """

    def __init__(
        self,
        *,
        agent_id: str = "default",
        timeout: float | None = 30.0,
        hot_reload: HotReloadConfig | None = None,
        settings: KernelSettings | None = None,
        block_limit: float | None = 1.0,
    ) -> None:
        self.agent_id = agent_id
        self.timeout = timeout
        self.hot_reload = hot_reload if hot_reload is not None else HotReloadConfig()
        self._settings = settings
        self._shared = SharedState()
        self._bus = EventBus(self._observer_failed)
        self._registry = Registry(Watchdog())
        self._caller = PluginCaller(self._registry, block_limit=block_limit)
        self._lifecycle = Lifecycle(self._registry, self._caller, self._bus, self._context_for)
        self._scheduler = Scheduler(self._registry, self._lifecycle)
        self._observers = Observers(self._bus)
        self._intake = Intake(self._registry, self._lifecycle, self._observers)
        self._hot_reloader: HotReloader | None = None
        self._supervision: Supervision | None = None  # made for the first isolated plugin
        # The hot path: ``execute`` is the caller's own, one call deep; with MOFA_TRACE set,
        # a timed one (so the plain one never checks for tracing).
        caller = self._caller
        self.execute = caller.execute_traced if caller.trace else caller.execute  # type: ignore[method-assign]

    @property
    def block_limit(self) -> float | None:
        """A plugin call that blocks the event loop longer than this many seconds is a fault
        (``None``: not watched)."""
        return self._caller.block_limit

    # -- construction -------------------------------------------------------------------

    @classmethod
    def from_config(cls, path: str | os.PathLike[str] | None = None) -> PluginManager:
        """A manager configured from TOML: ``path``, else ``$MOFA_CONFIG``, else ``./mofa.toml``.

        Raises :class:`~mofa_kernel.PluginConfigError` listing every bad key.
        """
        from ._config import load_settings

        return cls.from_settings(load_settings(path))

    @classmethod
    def from_settings(cls, settings: KernelSettings) -> PluginManager:
        """A manager configured by ``settings`` (what :meth:`from_config` read)."""
        return cls(
            agent_id=settings.kernel.agent_id,
            timeout=settings.kernel.timeout,
            block_limit=settings.kernel.block_limit_or_none,
            hot_reload=settings.hot_reload.to_config(),
            settings=settings,
        )

    @property
    def settings(self) -> KernelSettings:
        """The configuration this manager was built from (defaults when none was read)."""
        if self._settings is None:
            from ._config import KernelSettings

            self._settings = KernelSettings()
        return self._settings

    async def __aenter__(self) -> PluginManager:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.shutdown()

    # -- registration ---------------------------------------------------------------------

    def register(
        self,
        plugin: object,
        *,
        config: PluginConfig | None = None,
        timeout: float | None = None,
    ) -> str:
        """Add an in-process plugin: an ``AgentPlugin`` instance or an object of hooks.

        Returns its id. ``config`` becomes its ``PluginConfig`` and ``timeout``
        its deadline (else the manager's). Environment variables do not apply.
        Raises :class:`~mofa_kernel.PluginLoadError` for a plugin that breaks
        the hook specifications or whose metadata cannot be read, and
        :class:`~mofa_kernel.DiscoveryError` for an id that is taken.
        """
        pid = self._intake.register(
            plugin, config=config, timeout=timeout if timeout is not None else self.timeout
        )
        self._supervise(pid)
        return pid

    def discover(self) -> DiscoveryReport:
        """Find the plugins of entry-point group ``mofa.plugins`` and register the enabled ones.

        Honours the configuration and ``MOFA_DISABLE_PLUGIN_AUTOLOAD``,
        ``MOFA_PLUGINS``: an excluded plugin is recorded but never imported.
        A plugin that fails to import, a duplicate id, or a distribution that
        needs another mofa-kernel is recorded as failed; the rest carry on.
        """
        report = self._intake.discover(self.settings, self.timeout)
        for record in report.records:
            self._supervise(record.plugin_id)
        return report

    def _supervise(self, plugin_id: str) -> None:
        """Restart an isolated plugin after its worker dies, by its ``[plugins.ID]`` policy."""
        entry = self._registry.entries.get(plugin_id)
        if entry is None or not is_isolated(entry.plugin):
            return
        if self._supervision is None:
            from ._runtime._supervision import Supervision

            parts = (self._registry, self._lifecycle, self._bus.emit)
            self._supervision = Supervision(*parts, lambda: self.settings, self._scheduler)
        self._supervision.watch(plugin_id)

    # -- queries --------------------------------------------------------------------------

    @property
    def shared_state(self) -> SharedState:
        """The state every plugin of this manager shares through ``ctx.get_state``/``set_state``."""
        return self._shared

    def plugin_ids(self) -> list[str]:
        """The ids of the registered plugins (failed ones included), in registration order."""
        return list(self._registry.entries)

    def get(self, plugin_id: str) -> AgentPlugin:
        """The plugin object (a module-style plugin is wrapped in an ``AgentPlugin`` adapter)."""
        entry = self._registry.get(plugin_id)
        if entry.plugin is None:
            raise PluginNotFoundError(
                f"plugin {plugin_id!r} could not be loaded: {entry.error}", plugin_id=plugin_id
            )
        return entry.plugin

    def state(self, plugin_id: str) -> PluginState:
        return self._registry.get(plugin_id).state

    def record(self, plugin_id: str) -> PluginRecord:
        """Everything known about one plugin, disabled and failed ones included."""
        return self._registry.record(plugin_id)

    def records(self) -> list[PluginRecord]:
        """A record for every plugin known, registered, failed or excluded."""
        return self._registry.records()

    def dependency_graph(self) -> dict[str, tuple[str, ...]]:
        """Plugin id -> the ids it depends on, for every plugin with known metadata."""
        return self._registry.graph()

    def start_order(self) -> list[str]:
        """The order plugins start in: dependencies first, then priority, then id."""
        return self._scheduler.start_order()

    def dependency_error(self, plugin_id: str) -> DependencyError | None:
        """Why ``plugin_id`` cannot start for reasons of dependencies, as an exception, or None."""
        self._registry.get(plugin_id)
        return self._scheduler.dependency_error(plugin_id)

    def in_flight(self, plugin_id: str) -> int:
        """How many executes of ``plugin_id`` are running now."""
        return len(self._registry.get(plugin_id).table.calls)

    def kernel_stats(self) -> dict[str, int]:
        """The kernel's own figures: plugins, events emitted, events dropped."""
        return {
            "plugins": len(self._registry.entries),
            "events_emitted": self._bus.emitted,
            "events_dropped": self._bus.dropped,
        }

    # -- events ---------------------------------------------------------------------------

    def add_listener(self, listener: Callable[[KernelEvent], Any]) -> None:
        """Call ``listener(event)`` for every event; an ``async`` listener runs as a task."""
        self._bus.add_listener(listener)

    def remove_listener(self, listener: Callable[[KernelEvent], Any]) -> None:
        self._bus.remove_listener(listener)

    def events(self, maxsize: int = 1000) -> Subscription:
        """A bounded subscription to the event stream: ``async for event in manager.events()``.

        When the consumer falls more than ``maxsize`` events behind, the oldest
        are dropped and counted in ``subscription.dropped``.
        """
        return self._bus.subscribe(maxsize)

    def emit(self, event: KernelEvent) -> None:
        """Put ``event`` on the event stream (what the host, or hot reload, announces)."""
        self._bus.emit(event)

    def _observer_failed(self, name: str, event: KernelEvent, exc: BaseException) -> None:
        message = f"on_plugin_event({event.variant}) failed: {describe(exc)}"
        entry = self._registry.entries.get(name)
        if entry is not None:
            entry.error = message
        pid = entry.id if entry is not None else "<listener>"
        self._bus.emit(PluginEvent.PluginError(plugin_id=pid, error=message))

    def _context_for(self, entry: Entry | str) -> PluginContext:
        """The context a plugin receives in ``load``: its config, shared state, and an event
        sink that speaks only in its own name."""
        if isinstance(entry, str):
            entry = self._registry.get(entry)
        pid = entry.id
        return PluginContext(
            self.agent_id,
            entry.config,
            plugin_id=pid,
            shared_state=self._shared,
            event_sink=_OwnEvents(pid, self._bus),
        )

    # -- one transition -------------------------------------------------------------------

    async def load(self, plugin_id: str) -> None:
        """UNLOADED -> LOADING -> LOADED; emits PluginLoaded.

        Raises :class:`~mofa_kernel.MissingDependencyError` or
        :class:`~mofa_kernel.DependencyCycleError` (nothing changes) for a
        plugin that can never start.
        """
        entry = self._registry.get(plugin_id)
        self._refuse_broken_dependencies(entry)
        await self._lifecycle.load(entry)

    async def init_plugin(self, plugin_id: str) -> None:
        """Apply configuration; the plugin stays LOADED (no StateChanged)."""
        await self._lifecycle.init_plugin(self._registry.get(plugin_id))

    async def start(self, plugin_id: str) -> None:
        """LOADED -> RUNNING, initialising first if that has not been done.

        Every dependency must be RUNNING: else a
        :class:`~mofa_kernel.DependencyError` (a
        :class:`~mofa_kernel.MissingDependencyError` for one that does not
        exist) is raised and nothing changes.
        """
        entry = self._registry.get(plugin_id)
        if entry.state is PluginState.LOADED and entry.dependencies:
            error = self._scheduler.dependency_error(plugin_id, running=True)
            if error is not None:
                raise error
        await self._lifecycle.start(entry)

    def _refuse_broken_dependencies(self, entry: Entry) -> None:
        """A plugin that can never start (a dependency missing, or a cycle) is not loaded."""
        if not entry.dependencies or entry.state is not PluginState.UNLOADED:
            return
        error = self._scheduler.dependency_error(entry.id)
        if isinstance(error, (MissingDependencyError, DependencyCycleError)):
            raise error

    async def pause(self, plugin_id: str) -> None:
        """RUNNING -> PAUSED."""
        await self._lifecycle.pause(self._registry.get(plugin_id))

    async def resume(self, plugin_id: str) -> None:
        """PAUSED -> RUNNING."""
        await self._lifecycle.resume(self._registry.get(plugin_id))

    async def stop(self, plugin_id: str) -> None:
        """RUNNING or PAUSED -> LOADED. New executes are refused from the moment it begins."""
        await self._lifecycle.stop(self._registry.get(plugin_id))

    async def unload(self, plugin_id: str) -> None:
        """LOADED or ERROR -> UNLOADED; emits PluginUnloaded.

        From ERROR this is the cleanup step: the plugin's ``unload`` runs only
        if its ``load`` had completed. A plugin that could not be imported at
        all has nothing to clean up and stays in ERROR.
        """
        await self._lifecycle.unload(self._registry.get(plugin_id))

    # -- execute, health, stats -----------------------------------------------------------

    async def execute(self, plugin_id: str, input: str) -> str:
        """Run the plugin's ``execute(input)`` under its deadline; it must be RUNNING.

        A plugin that raises :class:`~mofa_kernel.PluginExecutionError` has
        rejected this input and stays running; any other exception, a timeout
        or a non-``str`` answer puts it in the error state.
        """
        return await self._caller.execute(plugin_id, input)

    async def wait_idle(self, plugin_id: str, timeout: float | None = None) -> bool:
        """Wait until ``plugin_id`` has no execute in flight; ``False`` if ``timeout`` passes."""
        return await self._caller.wait_idle(self._registry.get(plugin_id), timeout)

    def replace_plugin(self, plugin_id: str, plugin: object) -> AgentPlugin:
        """Swap in a new object for ``plugin_id`` (hot reload's last step); return the old one.

        The new object must describe the same id. Its ``state`` is set to the
        plugin's; calls already in flight finish on the old object, and every
        call after this returns goes to the new one. Hook registrations (such
        as ``on_plugin_event``) move to the new object.
        """
        return self._port().replace(plugin_id, plugin)

    async def health_check(self) -> dict[str, bool]:
        """Every plugin's health by id; a plugin that cannot answer is unhealthy."""
        return await self._caller.health_of(list(self._registry.entries.values()))

    async def stats(self) -> dict[str, dict[str, Any]]:
        """Every plugin's ``stats()`` by id; a failing one gives ``{"error": ...}``."""
        return await self._caller.stats_of(list(self._registry.entries.values()))

    # -- many plugins ---------------------------------------------------------------------

    async def load_all(self) -> LifecycleReport:
        """Load every enabled plugin, dependencies first; never raises for one plugin."""
        return await self._scheduler.each(
            "load_all", self._lifecycle.load, lambda e: e.state == PluginState.UNLOADED
        )

    async def init_all(self) -> LifecycleReport:
        """Initialise every loaded, enabled plugin that is not yet initialised."""
        return await self._scheduler.each(
            "init_all",
            self._lifecycle.init_plugin,
            lambda e: e.state == PluginState.LOADED and not e.initialized,
        )

    async def start_all(self, ids: Iterable[str] | None = None) -> LifecycleReport:
        """Bring every enabled ``auto_start`` plugin (or only ``ids``), and what they need,
        to RUNNING.

        A plugin starts once all its dependencies run; plugins free at the same
        time start concurrently, highest priority first, then by id. One
        plugin's failure skips only its dependents; each plugin kept down by a
        dependency problem gets a ``PluginError`` event naming the chain.
        Raises :class:`~mofa_kernel.PluginNotFoundError` for an unknown id in ``ids``.
        """
        return await self._scheduler.bring_up(ids)

    async def stop_all(self) -> LifecycleReport:
        """Stop every running or paused plugin, in exactly the reverse of the order they started."""
        return await self._scheduler.stop_all()

    async def unload_all(self) -> LifecycleReport:
        """Unload every loaded plugin (and clean up failed ones), in reverse order."""
        return await self._scheduler.unload_all()

    async def settle(self) -> None:
        """Wait for the work the manager started on its own (stopping a failed plugin's
        dependents, async ``on_plugin_event`` observers) to finish."""
        await self._scheduler.settle()
        if self._supervision is not None:
            await self._supervision.supervisor.settle()
        await self._bus.drain()

    async def shutdown(self) -> None:
        """Stop hot reloading, then stop and unload every plugin in reverse order, then wait
        for async observers."""
        await self.stop_hot_reload()
        await self.settle()
        await self.stop_all()
        await self.unload_all()
        await self.settle()
        if self._supervision is not None:
            await self._supervision.supervisor.shut_down()  # workers of plugins never loaded
        self._caller.stop_watching()

    # -- hot reload -----------------------------------------------------------------------
    # The reloader lives in mofa_kernel._reload and is imported on first use, so a host that
    # never hot-reloads never imports it (nor watchfiles). It drives plugins through this
    # manager's public verbs and changes the runtime's bookkeeping only through its port.

    def _port(self) -> ReloadPort:
        parts = (self._registry, self._caller, self._lifecycle, self._scheduler, self._observers)
        return ReloadPort(*parts, self._context_for, lambda: self.settings, self._supervise)

    @property
    def reloader(self) -> HotReloader:
        """The hot reloader of this manager (made on first use; watches nothing until started)."""
        reloader = self._hot_reloader
        if reloader is None:
            from ._reload import HotReloader

            reloader = self._hot_reloader = HotReloader(self, self._port())
        return reloader

    async def reload(self, plugin_id: str, *, force: bool = False) -> bool:
        """Reload ``plugin_id``'s code now, whatever the strategy; ``True`` if new code serves.

        Returns ``False`` when the code is unchanged since it was loaded (the
        plugin's ``refresh()`` ran instead), unless ``force`` is set. Raises a
        :class:`~mofa_kernel.PluginError` subclass naming the failed step,
        file and line; the previous version then keeps serving.
        """
        return await self.reloader.reload(plugin_id, force=force)

    async def start_hot_reload(self, *, watch_installs: bool | None = None) -> None:
        """Watch every plugin's code (and, with ``watch_installs``, the installed distributions).

        Returns once the watchers are armed. ``watch_installs=None`` watches
        installs when this manager discovered plugins from entry points.
        """
        await self.reloader.start(watch_installs=watch_installs)

    async def stop_hot_reload(self) -> None:
        """Stop watching; wait for a reload in progress and for old instances to retire."""
        if self._hot_reloader is not None:
            await self._hot_reloader.stop()

    def hot_reloading(
        self, *, watch_installs: bool | None = None
    ) -> contextlib.AbstractAsyncContextManager[HotReloader]:
        """``async with manager.hot_reloading():`` watches plugin code for the block's duration."""
        return self.reloader.watching(watch_installs=watch_installs)


class _OwnEvents:
    """A plugin's event sink: passes its events to the bus, refusing a ``PluginEvent`` in
    another plugin's name.

    One small object per loaded plugin (a closure would be five for the garbage collector
    to track: the function, its cells and tuple, and the bus's bound method).
    """

    __slots__ = ("_bus", "_pid")

    def __init__(self, pid: str, bus: EventBus) -> None:
        self._pid = pid
        self._bus = bus

    def __call__(self, event: KernelEvent) -> None:
        pid = self._pid
        named = getattr(event, "plugin_id", None)
        if isinstance(event, PluginEvent) and named != pid:
            raise PluginError(
                f"plugin {pid!r} cannot emit {event.variant} in the name of {named!r}",
                plugin_id=pid,
            )
        self._bus.emit(event)
