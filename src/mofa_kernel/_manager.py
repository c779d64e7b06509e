"""The :class:`PluginManager`: registers, orders and drives plugins, and isolates their failures."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from types import CodeType, CoroutineType, FrameType, TracebackType
from typing import TYPE_CHECKING, Any, Final, cast

import pluggy

from ._adapters import HookPlugin, as_agent_plugin, has_hooks
from ._blocking import BlockIncident, FrameReader, LoopMonitor, frame_local
from ._context import PluginContext, SharedState
from ._deadline import CallTable, DeadlineExceeded, Watchdog, call_with_deadline
from ._errors import (
    DependencyCycleError,
    DependencyError,
    DiscoveryError,
    InvalidStateError,
    MissingDependencyError,
    PluginError,
    PluginExecutionError,
    PluginInitError,
    PluginLifecycleError,
    PluginLoadError,
    PluginNotFoundError,
    PluginTimeoutError,
)
from ._event_bus import EventBus, Subscription
from ._events import KernelEvent, PluginEvent
from ._graph import DependencyProblem, resolve
from ._hookspecs import PROJECT_NAME, LifecycleHooks
from ._metadata import PluginConfig, PluginMetadata
from ._plugin import AgentPlugin
from ._records import DiscoveryReport, LifecycleReport, Outcome, PluginRecord
from ._reload_config import HotReloadConfig
from ._types import PluginState

if TYPE_CHECKING:
    from ._config import KernelSettings
    from ._discovery import PluginSource
    from ._reload import HotReloader

__all__ = ["PluginManager"]

_monotonic = time.monotonic
_logger = logging.getLogger("mofa_kernel")
_NOT_EXPIRED: Final = object()


def _read_execute_frame(frame: FrameType) -> tuple[str, str] | None:
    slot = frame_local(frame, "slot")
    return (slot.id, "execute") if isinstance(slot, _Slot) else None


def _read_invoke_frame(frame: FrameType) -> tuple[str, str] | None:
    slot, hook = frame_local(frame, "slot"), frame_local(frame, "hook")
    return (slot.id, hook) if isinstance(slot, _Slot) and isinstance(hook, str) else None


def _start_task(loop: asyncio.AbstractEventLoop, coro: Any) -> asyncio.Task[None]:
    """A task for ``coro``; on 3.12+ it starts eagerly, so a bring-up that never
    suspends finishes without a trip through the event loop."""
    if sys.version_info >= (3, 12):
        return asyncio.Task(coro, loop=loop, eager_start=True)
    return loop.create_task(coro)


_StateChanged = PluginEvent.StateChanged
_new_object = object.__new__
_set_field = object.__setattr__


def _state_changed(plugin_id: str, old: PluginState, new: PluginState) -> PluginEvent:
    """``PluginEvent.StateChanged`` without attrs' validators: the kernel's own values are
    known to be right, and this runs for every transition of every plugin."""
    event = _new_object(_StateChanged)
    _set_field(event, "plugin_id", plugin_id)
    _set_field(event, "old_state", old)
    _set_field(event, "new_state", new)
    return event


_RETURNS_NOTHING: Final = frozenset(
    {"load", "init_plugin", "start", "pause", "resume", "stop", "unload", "restore_state"}
)


class _WrongReturn(Exception):
    """A plugin call misbehaved without raising: a value where nothing is due, or a
    blocked event loop noticed while the call was running."""


async def _as_coroutine(value: Any) -> Any:
    """Wrap what a non-``async`` execute returned (a value or another awaitable)."""
    if hasattr(value, "__await__"):
        return await value
    return value


UNLOADED: Final = PluginState.UNLOADED
LOADING: Final = PluginState.LOADING
LOADED: Final = PluginState.LOADED
RUNNING: Final = PluginState.RUNNING
PAUSED: Final = PluginState.PAUSED

_ERROR_CLASSES: Final[dict[str, type[PluginError]]] = {
    "load": PluginLoadError,
    "init_plugin": PluginInitError,
    "execute": PluginExecutionError,
    "health_check": PluginExecutionError,
    "stats": PluginExecutionError,
}

#: Exceptions from plugin code that are contained as a plugin failure. KeyboardInterrupt is
#: not: it is the person at the terminal asking the host to stop.
_CONTAINED: Final = (Exception, SystemExit, asyncio.CancelledError)


class _Slot:
    """The manager's bookkeeping for one plugin."""

    __slots__ = (
        "busy",
        "config",
        "ctx",
        "enabled",
        "error",
        "hooks_registered",
        "id",
        "idle_waiters",
        "initialized",
        "loaded",
        "metadata",
        "pending_fault",
        "plugin",
        "reason",
        "source",
        "state",
        "status",
        "stopping",
        "table",
        "timeout",
    )

    def __init__(
        self,
        plugin_id: str,
        plugin: AgentPlugin | None,
        metadata: PluginMetadata | None,
        config: PluginConfig,
        timeout: float | None,
        source: PluginSource | None,
    ) -> None:
        self.id = plugin_id
        self.plugin = plugin
        self.metadata = metadata
        self.config = config
        self.timeout = timeout
        self.source = source
        self.state: PluginState = UNLOADED
        self.status = "registered"
        self.enabled = True
        self.reason: str | None = None
        self.error: str | None = None
        self.ctx: PluginContext | None = None
        self.busy = False
        self.stopping = False
        self.initialized = False
        self.loaded = False
        self.table: CallTable  # set by the manager: the in-flight executes
        self.idle_waiters: list[asyncio.Future[None]] = []
        #: A fault noticed while a lifecycle call was still running (a blocked loop).
        self.pending_fault: str | None = None
        self.hooks_registered = False

    @property
    def dependencies(self) -> tuple[str, ...]:
        return self.metadata.dependencies if self.metadata is not None else ()

    @property
    def priority(self) -> int:
        return int(self.metadata.priority) if self.metadata is not None else 0


def _cause(exc: BaseException) -> BaseException | None:
    # A timeout has no useful cause; every other failure keeps the plugin's exception.
    return None if isinstance(exc, DeadlineExceeded) else exc


def _describe(exc: BaseException) -> str:
    """``ValueError: boom (plugin.py:12)``: the exception and the plugin line that raised it."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    frames = traceback.extract_tb(exc.__traceback__)
    own = os.path.dirname(__file__)
    for frame in reversed(frames):
        if not frame.filename.startswith(own) and "asyncio" not in frame.filename:
            return f"{text} ({os.path.basename(frame.filename)}:{frame.lineno})"
    return text


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
        #: A plugin call that keeps the event loop blocked for longer than this many
        #: seconds is a fault (``None``: do not watch).
        self.block_limit = block_limit
        self._monitor: LoopMonitor | None = None
        #: Set from the monitor's thread when it sees a blocked loop; read on every execute.
        self._incident_seen = False
        self._claiming: _Slot | None = None
        self.hot_reload = hot_reload if hot_reload is not None else HotReloadConfig()
        self._settings = settings
        self._slots: dict[str, _Slot] = {}
        # The slots that accept executes right now (RUNNING and not stopping): one lookup
        # on the hot path instead of several checks.
        self._serving: dict[str, _Slot] = {}
        self._watchdog = Watchdog()
        self._background: set[asyncio.Task[None]] = set()
        self._excluded: dict[str, PluginRecord] = {}
        self._shared = SharedState()
        self._bus = EventBus(self._observer_failed)
        self._pluggy = pluggy.PluginManager(PROJECT_NAME)
        self._pluggy.add_hookspecs(LifecycleHooks)
        self._up_order: dict[str, None] = {}
        self._load_order: dict[str, None] = {}
        self._trace = os.environ.get("MOFA_TRACE", "") not in ("", "0")
        self._closed = False

    # -- construction -------------------------------------------------------------------

    @classmethod
    def from_config(cls, path: str | os.PathLike[str] | None = None) -> PluginManager:
        """A manager configured from TOML: ``path``, else ``$MOFA_CONFIG``, else ``./mofa.toml``.

        Raises :class:`~mofa_kernel.PluginConfigError` listing every bad key.
        """
        from ._config import load_settings

        settings = load_settings(path)
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
        the hook specifications, and :class:`~mofa_kernel.DiscoveryError` for
        an id that is taken.
        """
        label = repr(getattr(plugin, "__name__", type(plugin).__name__))
        agent = as_agent_plugin(plugin, label=label)
        return self._add(agent, plugin, config=config, timeout=timeout, source=None)

    def _add(
        self,
        agent: AgentPlugin,
        hooks_object: object,
        *,
        config: PluginConfig | None,
        timeout: float | None,
        source: PluginSource | None,
    ) -> str:
        metadata = agent.metadata
        pid = metadata.id
        if pid in self._slots:
            raise DiscoveryError(f"plugin id {pid!r} is already registered", plugin_id=pid)
        slot = _Slot(
            pid,
            agent,
            metadata,
            config if config is not None else PluginConfig(),
            timeout if timeout is not None else self.timeout,
            source,
        )
        slot.table = self._watchdog.table(slot.timeout)
        if has_hooks(hooks_object):
            try:
                self._pluggy.register(hooks_object, name=pid)
            except (ValueError, pluggy.PluginValidationError) as exc:
                raise PluginLoadError(f"plugin {pid!r}: {exc}", plugin_id=pid) from exc
            slot.hooks_registered = True
            self._refresh_observers()
        self._slots[pid] = slot
        self._excluded.pop(pid, None)
        with contextlib.suppress(AttributeError):  # a read-only ``state`` property
            agent.state = UNLOADED
        return pid

    def _refresh_observers(self) -> None:
        impls = self._pluggy.hook.on_plugin_event.get_hookimpls()
        self._bus.set_observers([(impl.plugin_name, impl.function) for impl in impls])

    def discover(self) -> DiscoveryReport:
        """Find the plugins of entry-point group ``mofa.plugins`` and register the enabled ones.

        Honours the configuration and ``MOFA_DISABLE_PLUGIN_AUTOLOAD``,
        ``MOFA_PLUGINS``: an excluded plugin is recorded but never imported.
        A plugin that fails to import, a duplicate id, or a distribution that
        needs another mofa-kernel is recorded as failed; the rest carry on.
        """
        from ._cache import MetadataNotes
        from ._config import plugin_rule
        from ._discovery import load_plugin_object, survey

        settings = self.settings
        found = survey(plugin_rule(settings, os.environ))
        notes = MetadataNotes.before(found.loadable())  # for `plugins list`, without importing
        for unreadable in found.problems:
            _logger.warning("%s", unreadable)
        # plugin settings (issue 14): a [plugins.ID] table that names no plugin is a warning
        from ._settings import unknown_plugin_tables

        known = {entry.plugin_id for entry in found.entries} | set(self._slots)
        for line in unknown_plugin_tables(settings.plugins, known):
            _logger.warning("%s", line)
        records: list[PluginRecord] = []
        for entry in found.entries:
            source = entry.source
            pid = source.plugin_id
            section = settings.plugins.get(pid)
            config = section.to_plugin_config() if section is not None else PluginConfig()
            timeout = section.timeout if section is not None and section.timeout else None
            if pid in self._slots and self._slots[pid].source == source:
                records.append(self.record(pid))  # found by an earlier discover()
                continue
            if entry.status == "disabled":
                record = PluginRecord(
                    plugin_id=pid,
                    status="disabled",
                    state=UNLOADED,
                    enabled=False,
                    config=config,
                    source=source,
                    reason=entry.reason,
                )
                self._excluded[pid] = record
                records.append(record)
                continue
            problem: str | None = None
            if entry.status == "failed":
                problem = entry.reason or "refused"
            elif pid in self._slots:
                problem = f"plugin id {pid!r} is already registered in-process"
            if problem is None:
                try:
                    obj = load_plugin_object(source)
                    agent = as_agent_plugin(obj, label=f"{pid!r} ({source.entry_point})")
                    if agent.metadata.id != pid:
                        raise PluginLoadError(
                            f"entry point {pid!r} names a plugin whose metadata id is "
                            f"{agent.metadata.id!r}; they must match"
                        )
                    self._add(agent, obj, config=config, timeout=timeout, source=source)
                    notes.learned(source, agent.metadata)
                except PluginError as exc:
                    problem = str(exc)
            if problem is not None:
                self._add_failed(pid, problem, config, timeout, source)
            records.append(self.record(pid))
        notes.save()
        return DiscoveryReport(records=tuple(records), problems=found.problems)

    def _add_failed(
        self,
        pid: str,
        problem: str,
        config: PluginConfig,
        timeout: float | None,
        source: PluginSource,
    ) -> None:
        if pid in self._slots and self._slots[pid].plugin is not None:
            # The id is taken by a working plugin; keep it and record the loser aside.
            self._excluded[pid] = PluginRecord(
                plugin_id=pid,
                status="failed",
                state=PluginState.error(problem),
                enabled=False,
                config=config,
                source=source,
                error=problem,
            )
            return
        slot = _Slot(pid, None, None, config, timeout or self.timeout, source)
        slot.table = self._watchdog.table(slot.timeout)
        slot.status = "failed"
        slot.error = problem
        slot.state = PluginState.error(problem)
        self._slots[pid] = slot

    # -- queries --------------------------------------------------------------------------

    @property
    def shared_state(self) -> SharedState:
        """The state every plugin of this manager shares through ``ctx.get_state``/``set_state``."""
        return self._shared

    def plugin_ids(self) -> list[str]:
        """The ids of the registered plugins (failed ones included), in registration order."""
        return list(self._slots)

    def _slot(self, plugin_id: str) -> _Slot:
        try:
            return self._slots[plugin_id]
        except KeyError:
            if plugin_id in self._excluded:
                why = self._excluded[plugin_id].reason or self._excluded[plugin_id].error
                raise PluginNotFoundError(
                    f"plugin {plugin_id!r} is not loaded: {why}", plugin_id=plugin_id
                ) from None
            raise PluginNotFoundError(f"no plugin {plugin_id!r}", plugin_id=plugin_id) from None

    def get(self, plugin_id: str) -> AgentPlugin:
        """The plugin object (a module-style plugin is wrapped in an ``AgentPlugin`` adapter)."""
        slot = self._slot(plugin_id)
        if slot.plugin is None:
            raise PluginNotFoundError(
                f"plugin {plugin_id!r} could not be loaded: {slot.error}", plugin_id=plugin_id
            )
        return slot.plugin

    def state(self, plugin_id: str) -> PluginState:
        return self._slot(plugin_id).state

    def record(self, plugin_id: str) -> PluginRecord:
        """Everything known about one plugin, disabled and failed ones included."""
        if plugin_id not in self._slots and plugin_id in self._excluded:
            return self._excluded[plugin_id]
        slot = self._slot(plugin_id)
        return PluginRecord(
            plugin_id=slot.id,
            status=slot.status,
            state=slot.state,
            enabled=slot.enabled and slot.config.enabled,
            metadata=slot.metadata,
            config=slot.config,
            timeout=slot.timeout,
            source=slot.source,
            reason=slot.reason,
            error=slot.error,
        )

    def records(self) -> list[PluginRecord]:
        """A record for every plugin known, registered, failed or excluded."""
        out = [self.record(pid) for pid in self._slots]
        out.extend(r for pid, r in self._excluded.items() if pid not in self._slots)
        return out

    def dependency_graph(self) -> dict[str, tuple[str, ...]]:
        """Plugin id -> the ids it depends on, for every plugin with known metadata."""
        return {pid: slot.dependencies for pid, slot in self._slots.items() if slot.metadata}

    def start_order(self) -> list[str]:
        """The order plugins start in: dependencies first, then priority, then id."""
        usable = {pid: s for pid, s in self._slots.items() if s.metadata is not None}
        resolution = resolve(
            {pid: s.dependencies for pid, s in usable.items()},
            {pid: s.priority for pid, s in usable.items()},
        )
        return list(resolution.order)

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
        """Put ``event`` on the event stream (what ``ctx.emit_event`` does)."""
        self._bus.emit(event)

    def _observer_failed(self, name: str, event: KernelEvent, exc: BaseException) -> None:
        where = f"on_plugin_event({event.variant})"
        message = f"{where} failed: {_describe(exc)}"
        pid = name if name in self._slots else "<listener>"
        if pid in self._slots:
            self._slots[pid].error = message
        self._bus.emit(PluginEvent.PluginError(plugin_id=pid, error=message))

    # -- state ----------------------------------------------------------------------------

    def _set_state(self, slot: _Slot, new: PluginState) -> None:
        old = slot.state
        if old is new or old == new:
            return
        slot.state = new
        if new is RUNNING and not slot.stopping:
            self._serving[slot.id] = slot
        else:
            self._serving.pop(slot.id, None)
        if slot.plugin is not None:
            try:  # noqa: SIM105 - try is free on this hot path; contextlib.suppress is not
                slot.plugin.state = new
            except AttributeError:
                pass  # a read-only ``state`` property: the manager's record is the truth
        self._bus.emit(_state_changed(slot.id, old, new))

    def _fail(self, slot: _Slot, hook: str, exc: BaseException | None, note: str) -> PluginError:
        """Put ``slot`` in the error state, emit PluginError, and return the error to raise."""
        if isinstance(exc, DeadlineExceeded):
            message = f"{hook} timed out after {slot.timeout:g}s"
            error: PluginError = PluginTimeoutError(
                message, plugin_id=slot.id, hook=hook, timeout=slot.timeout
            )
        else:
            message = f"{hook} failed: {note}"
            cls = _ERROR_CLASSES.get(hook, PluginLifecycleError)
            error = cls(message, plugin_id=slot.id, hook=hook)
        if slot.source is not None:
            error.distribution = slot.source.distribution
            error.entry_point = slot.source.entry_point
        was_up = slot.state is RUNNING or slot.state is PAUSED
        slot.error = message
        self._set_state(slot, PluginState.error(message))
        self._bus.emit(PluginEvent.PluginError(plugin_id=slot.id, error=message))
        if was_up:
            self._take_down_dependents(slot.id)
        return error

    def _watch_loop(self) -> None:
        """Start watching for plugins that block the event loop (see ``_blocking``)."""
        if self.block_limit is None:
            return
        if self._monitor is None:
            anchors: dict[CodeType, FrameReader] = {
                PluginManager.execute.__code__: _read_execute_frame,
                PluginManager._invoke.__code__: _read_invoke_frame,
            }
            self._monitor = LoopMonitor(
                self.block_limit, anchors, self._blocked, on_seen=self._incident_noticed
            )
        self._monitor.start(asyncio.get_running_loop())

    def _blocked(self, incident: BlockIncident) -> None:
        slot = self._slots.get(incident.plugin_id)
        if slot is None or slot.state.is_error:
            return
        if slot.busy or slot is self._claiming:
            # The call that blocked is still on its way out: it fails as it returns.
            slot.pending_fault = incident.describe()
            return
        self._fail(slot, incident.hook, None, incident.describe())

    def _incident_noticed(self) -> None:
        # Called from the monitor's thread: one plain assignment, read by the loop.
        self._incident_seen = True

    def _claim_incidents(self, slot: _Slot) -> str | None:
        """Deliver what the loop monitor saw; return the fault of ``slot``'s call, if any."""
        self._incident_seen = False
        monitor = self._monitor
        if monitor is not None:
            self._claiming = slot
            try:
                monitor.deliver()
            finally:
                self._claiming = None
        fault, slot.pending_fault = slot.pending_fault, None
        return fault

    def _dependents_up(self, plugin_id: str) -> list[str]:
        """The running or paused plugins that need ``plugin_id``, last started first."""
        needed_by: dict[str, list[str]] = {}
        for pid, slot in self._slots.items():
            for dep in slot.dependencies:
                needed_by.setdefault(dep, []).append(pid)
        needed: set[str] = set()
        stack = [plugin_id]
        while stack:
            for pid in needed_by.get(stack.pop(), ()):
                if pid not in needed:
                    needed.add(pid)
                    stack.append(pid)
        up = (RUNNING, PAUSED)
        return [
            pid
            for pid in reversed(self._up_order)
            if pid in needed and self._slots[pid].state in up
        ]

    def _take_down_dependents(self, plugin_id: str) -> None:
        """A plugin failed while up: stop what depends on it, in reverse start order."""
        dependents = self._dependents_up(plugin_id)
        if not dependents:
            return
        for pid in dependents:  # refuse their executes at once, before the stops run
            self._serving.pop(pid, None)
        task = asyncio.get_running_loop().create_task(self._stop_dependents(plugin_id, dependents))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _stop_dependents(self, plugin_id: str, dependents: list[str]) -> None:
        for pid in dependents:
            slot = self._slots[pid]
            if slot.state not in (RUNNING, PAUSED) or slot.busy:
                continue
            slot.reason = f"stopped because dependency {plugin_id} failed"
            try:
                await self.stop(pid)
            except PluginError:
                continue  # already recorded on the slot and emitted as PluginError by _fail

    async def settle(self) -> None:
        """Wait for the work the manager started on its own (stopping a failed plugin's
        dependents, async ``on_plugin_event`` observers) to finish."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)
        await self._bus.drain()

    def _check(self, slot: _Slot, hook: str, allowed: tuple[PluginState, ...]) -> AgentPlugin:
        if slot.busy:
            raise InvalidStateError(
                f"plugin {slot.id!r}: cannot {hook} while another lifecycle call is in progress",
                plugin_id=slot.id,
                hook=hook,
                expected=allowed,
                actual=slot.state,
            )
        if slot.state not in allowed:
            names = " or ".join(str(s) for s in allowed)
            raise InvalidStateError(
                f"plugin {slot.id!r}: cannot {hook} in state {slot.state}; it must be {names}",
                plugin_id=slot.id,
                hook=hook,
                expected=allowed,
                actual=slot.state,
            )
        if slot.plugin is None:
            raise InvalidStateError(
                f"plugin {slot.id!r} could not be loaded: {slot.error}",
                plugin_id=slot.id,
                hook=hook,
                expected=allowed,
                actual=slot.state,
            )
        return slot.plugin

    async def _invoke(self, slot: _Slot, hook: str, call: Callable[[], Any]) -> Any:
        """Run one plugin call under the slot's deadline; failures become the slot's error."""
        started = time.perf_counter() if self._trace else 0.0
        try:
            result = call()
            if isinstance(result, CoroutineType) or hasattr(result, "__await__"):
                result = await call_with_deadline(result, slot.timeout)
            if result is not None and hook in _RETURNS_NOTHING:
                raise _WrongReturn(f"returned {type(result).__name__}, expected None")
            if self._incident_seen or slot.pending_fault is not None:
                fault = self._claim_incidents(slot)  # this call blocked the loop: it fails
                if fault is not None:
                    raise _WrongReturn(fault)
        except BaseException as exc:
            self._trace_call(slot, hook, started, "failed")
            failure = self._plugin_failure(slot, hook, exc)
            if failure is exc:
                raise
            raise failure from _cause(exc)
        self._trace_call(slot, hook, started, "ok")
        return result

    def _plugin_failure(self, slot: _Slot, hook: str, exc: BaseException) -> BaseException:
        """What to raise for ``exc`` from plugin code: a contained failure, or ``exc`` itself."""
        if isinstance(exc, PluginExecutionError) and hook == "execute":
            if exc.plugin_id is None:  # the plugin rejected this input; it stays running
                exc.plugin_id = slot.id
                exc.hook = hook
            return exc
        if isinstance(exc, DeadlineExceeded):
            return self._fail(slot, hook, exc, "")
        if isinstance(exc, _WrongReturn):
            return self._fail(slot, hook, None, str(exc))
        if isinstance(exc, asyncio.CancelledError):
            # Only when nobody is cancelling the caller did the plugin raise it on its own
            # (tasks with cancelling(), 3.11+, can tell; otherwise it is the caller's).
            cancelling = getattr(asyncio.current_task(), "cancelling", None)
            if cancelling is not None and cancelling() == 0:
                return self._fail(slot, hook, exc, "raised CancelledError")
            return exc
        if isinstance(exc, _CONTAINED):
            return self._fail(slot, hook, exc, _describe(exc))
        return exc  # KeyboardInterrupt, GeneratorExit: not ours to contain

    def _trace_call(self, slot: _Slot, hook: str, started: float, outcome: str) -> None:
        if self._trace:
            elapsed = (time.perf_counter() - started) * 1000
            print(f"mofa: {slot.id}.{hook} {outcome} in {elapsed:.3f} ms", file=sys.stderr)

    # -- one transition -------------------------------------------------------------------

    async def load(self, plugin_id: str) -> None:
        """UNLOADED -> LOADING -> LOADED; emits PluginLoaded."""
        slot = self._slot(plugin_id)
        plugin = self._check(slot, "load", (UNLOADED,))
        self._watch_loop()
        slot.busy = True
        try:
            slot.ctx = PluginContext(
                self.agent_id,
                slot.config,
                plugin_id=slot.id,
                shared_state=self._shared,
                event_sink=self._bus.emit,
            )
            self._set_state(slot, LOADING)
            ctx = slot.ctx
            # -- plugin settings (issue 14, CONTRACT "Plugin settings"): typed before load --
            from ._settings import PluginConfigError, plugin_settings

            try:
                ctx.settings = plugin_settings(slot.id, plugin, slot.config.settings)
            except PluginConfigError as exc:
                raise self._fail(slot, "load", None, str(exc)) from None
            # -- end plugin settings --
            await self._invoke(slot, "load", lambda: plugin.load(ctx))
            slot.loaded = True
            slot.error = None
            self._set_state(slot, LOADED)
            self._load_order[slot.id] = None
            self._bus.emit(PluginEvent.PluginLoaded(plugin_id=slot.id))
        finally:
            slot.busy = False

    async def init_plugin(self, plugin_id: str) -> None:
        """Apply configuration; the plugin stays LOADED (no StateChanged)."""
        slot = self._slot(plugin_id)
        plugin = self._check(slot, "init_plugin", (LOADED,))
        slot.busy = True
        try:
            await self._invoke(slot, "init_plugin", plugin.init_plugin)
            slot.initialized = True
        finally:
            slot.busy = False

    async def start(self, plugin_id: str) -> None:
        """LOADED -> RUNNING, initialising first if that has not been done."""
        slot = self._slot(plugin_id)
        plugin = self._check(slot, "start", (LOADED,))
        if not slot.initialized:
            await self.init_plugin(plugin_id)
        slot.busy = True
        try:
            await self._invoke(slot, "start", plugin.start)
            slot.stopping = False
            self._set_state(slot, RUNNING)
            self._up_order.pop(slot.id, None)
            self._up_order[slot.id] = None
        finally:
            slot.busy = False

    async def pause(self, plugin_id: str) -> None:
        """RUNNING -> PAUSED."""
        slot = self._slot(plugin_id)
        plugin = self._check(slot, "pause", (RUNNING,))
        slot.busy = True
        try:
            await self._invoke(slot, "pause", plugin.pause)
            self._set_state(slot, PAUSED)
        finally:
            slot.busy = False

    async def resume(self, plugin_id: str) -> None:
        """PAUSED -> RUNNING."""
        slot = self._slot(plugin_id)
        plugin = self._check(slot, "resume", (PAUSED,))
        slot.busy = True
        try:
            await self._invoke(slot, "resume", plugin.resume)
            self._set_state(slot, RUNNING)
        finally:
            slot.busy = False

    async def stop(self, plugin_id: str) -> None:
        """RUNNING or PAUSED -> LOADED. New executes are refused from the moment it begins."""
        slot = self._slot(plugin_id)
        plugin = self._check(slot, "stop", (RUNNING, PAUSED))
        slot.busy = True
        slot.stopping = True
        self._serving.pop(slot.id, None)
        try:
            await self._invoke(slot, "stop", plugin.stop)
            self._set_state(slot, LOADED)
        finally:
            slot.busy = False
            slot.stopping = False
            if slot.state is RUNNING:  # the stop failed in a way that left it running
                self._serving[slot.id] = slot

    async def unload(self, plugin_id: str) -> None:
        """LOADED or ERROR -> UNLOADED; emits PluginUnloaded.

        From ERROR this is the cleanup step: the plugin's ``unload`` runs only
        if its ``load`` had completed. A plugin that could not be imported at
        all has nothing to clean up and stays in ERROR.
        """
        slot = self._slot(plugin_id)
        if slot.state.is_error:
            if slot.plugin is None:
                return
            plugin = self._check(slot, "unload", (slot.state,))
            if not slot.loaded:
                self._finish_unload(slot)
                return
        else:
            plugin = self._check(slot, "unload", (LOADED,))
        slot.busy = True
        try:
            await self._invoke(slot, "unload", plugin.unload)
            self._finish_unload(slot)
        finally:
            slot.busy = False

    def _finish_unload(self, slot: _Slot) -> None:
        slot.loaded = False
        slot.initialized = False
        self._up_order.pop(slot.id, None)
        self._load_order.pop(slot.id, None)
        self._set_state(slot, UNLOADED)
        self._bus.emit(PluginEvent.PluginUnloaded(plugin_id=slot.id))

    # -- execute, health, stats -----------------------------------------------------------

    async def execute(self, plugin_id: str, input: str) -> str:
        """Run the plugin's ``execute(input)`` under its deadline; it must be RUNNING.

        A plugin that raises :class:`~mofa_kernel.PluginExecutionError` has
        rejected this input and stays running; any other exception, a timeout
        or a non-``str`` answer puts it in the error state.
        """
        slot = self._serving.get(plugin_id)
        if slot is None:
            raise self._not_serving(plugin_id)
        started = time.perf_counter() if self._trace else 0.0
        plugin = slot.plugin
        assert plugin is not None
        table = slot.table
        expired: object = _NOT_EXPIRED
        # The hot path: the coroutine is awaited directly; its deadline costs one dict
        # entry, which the watchdog reads only when its timer fires (see _deadline.Watchdog).
        try:
            coro = plugin.execute(input)
            if type(coro) is not CoroutineType:
                coro = _as_coroutine(coro)
            began = table.calls[coro] = _monotonic()
            if not self._watchdog.armed and table.timeout is not None:
                self._watchdog.arm(began + table.timeout)
            try:
                result = await coro
            finally:
                del table.calls[coro]
                if self._watchdog.expired:
                    expired = self._watchdog.expired.pop(coro, _NOT_EXPIRED)
                if slot.idle_waiters and not table.calls:
                    self._wake_idle(slot)
        except asyncio.CancelledError as exc:
            if expired is not _NOT_EXPIRED:
                raise self._timed_out(slot, cast("asyncio.Task[Any] | None", expired)) from None
            failure = self._plugin_failure(slot, "execute", exc)
            if failure is exc:
                raise
            self._trace_call(slot, "execute", started, "failed")
            raise failure from exc
        except BaseException as exc:
            failure = self._plugin_failure(slot, "execute", exc)
            if failure is exc:
                raise
            self._trace_call(slot, "execute", started, "failed")
            raise failure from exc
        if self._incident_seen:
            fault = self._claim_incidents(slot)
            if fault is not None:  # this execute blocked the event loop
                raise self._fail(slot, "execute", None, fault)
        if type(result) is not str:
            raise self._fail(
                slot, "execute", None, f"returned {type(result).__name__}, expected str"
            )
        if self._trace:
            self._trace_call(slot, "execute", started, "ok")
        return result

    def _not_serving(self, plugin_id: str) -> PluginError:
        slot = self._slot(plugin_id)  # raises for an unknown id
        return InvalidStateError(
            f"plugin {plugin_id!r}: cannot execute in state {slot.state}; it must be Running",
            plugin_id=plugin_id,
            hook="execute",
            expected=(RUNNING,),
            actual=slot.state,
        )

    def _timed_out(self, slot: _Slot, task: asyncio.Task[Any] | None) -> PluginError:
        # Take back the watchdog's cancel request (3.11+, and runners that backport it).
        uncancel = getattr(task, "uncancel", None)
        if uncancel is not None:
            uncancel()
        return self._fail(slot, "execute", DeadlineExceeded(), "")

    @staticmethod
    def _wake_idle(slot: _Slot) -> None:
        for waiter in slot.idle_waiters:
            if not waiter.done():
                waiter.set_result(None)
        slot.idle_waiters.clear()

    def in_flight(self, plugin_id: str) -> int:
        """How many executes of ``plugin_id`` are running now."""
        return len(self._slot(plugin_id).table.calls)

    async def wait_idle(self, plugin_id: str, timeout: float | None = None) -> bool:
        """Wait until ``plugin_id`` has no execute in flight; ``False`` if ``timeout`` passes."""
        slot = self._slot(plugin_id)
        if not slot.table.calls:
            return True
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        slot.idle_waiters.append(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), timeout)
        except asyncio.TimeoutError:
            return False
        finally:
            if waiter in slot.idle_waiters:
                slot.idle_waiters.remove(waiter)
        return True

    def replace_plugin(self, plugin_id: str, plugin: object) -> AgentPlugin:
        """Swap in a new object for ``plugin_id`` (hot reload's last step); return the old one.

        The new object must describe the same id. Its ``state`` is set to the
        slot's; calls already in flight finish on the old object, and every call
        after this returns goes to the new one. Hook registrations (such as
        ``on_plugin_event``) move to the new object.
        """
        slot = self._slot(plugin_id)
        old = slot.plugin
        if old is None:
            raise InvalidStateError(
                f"plugin {plugin_id!r} has no instance to replace", plugin_id=plugin_id
            )
        agent = as_agent_plugin(plugin, label=repr(plugin_id))
        if agent.metadata.id != plugin_id:
            raise PluginLoadError(
                f"the new code of {plugin_id!r} describes a plugin {agent.metadata.id!r}",
                plugin_id=plugin_id,
            )
        # A module-style plugin's hooks live on its module, also when given wrapped.
        hooks_object = plugin.hooks if isinstance(plugin, HookPlugin) else plugin
        if slot.hooks_registered:
            self._pluggy.unregister(name=plugin_id)
            slot.hooks_registered = False
        if has_hooks(hooks_object):
            self._pluggy.register(hooks_object, name=plugin_id)
            slot.hooks_registered = True
        self._refresh_observers()
        with contextlib.suppress(AttributeError):  # a read-only ``state`` property
            agent.state = slot.state
        slot.plugin = agent
        slot.metadata = agent.metadata
        return old

    async def health_check(self) -> dict[str, bool]:
        """Every plugin's health by id; a plugin that cannot answer is unhealthy."""
        health: dict[str, bool] = {}
        for pid, slot in self._slots.items():
            plugin = slot.plugin
            if plugin is None or slot.state.is_error or not slot.loaded:
                health[pid] = False
                continue
            try:
                answer = await self._invoke(slot, "health_check", plugin.health_check)
            except PluginError:
                health[pid] = False
                continue
            if type(answer) is not bool:
                self._fail(slot, "health_check", None, f"returned {type(answer).__name__}")
                health[pid] = False
            else:
                health[pid] = answer
        return health

    async def stats(self) -> dict[str, dict[str, Any]]:
        """Every plugin's ``stats()`` by id; a failing one gives ``{"error": ...}``."""
        out: dict[str, dict[str, Any]] = {}
        for pid, slot in self._slots.items():
            plugin = slot.plugin
            if plugin is None:
                out[pid] = {"error": slot.error}
                continue
            try:
                answer = await self._invoke(slot, "stats", plugin.stats)
            except PluginError as exc:
                out[pid] = {"error": str(exc)}
                continue
            if not isinstance(answer, dict):
                error = self._fail(slot, "stats", None, f"returned {type(answer).__name__}")
                out[pid] = {"error": str(error)}
            else:
                out[pid] = answer
        return out

    def kernel_stats(self) -> dict[str, int]:
        """The kernel's own figures: plugins, events emitted, events dropped."""
        return {
            "plugins": len(self._slots),
            "events_emitted": self._bus.emitted,
            "events_dropped": self._bus.dropped,
        }

    # -- many plugins ---------------------------------------------------------------------

    def _plan(
        self, wanted: Iterable[str], report: LifecycleReport
    ) -> tuple[list[str], dict[str, DependencyProblem]]:
        """Resolve the dependency order of ``wanted`` plus what they need; record the blocked."""
        closure: dict[str, _Slot] = {}
        stack = list(wanted)
        while stack:
            pid = stack.pop()
            if pid in closure or pid not in self._slots:
                continue
            slot = self._slots[pid]
            closure[pid] = slot
            stack.extend(slot.dependencies)
        unavailable: dict[str, str] = {}
        for pid in list(closure):
            slot = closure[pid]
            if slot.plugin is None or slot.state.is_error:
                unavailable[pid] = "failed"
            elif not (slot.enabled and slot.config.enabled):
                unavailable[pid] = "is disabled"
            if pid in unavailable:
                del closure[pid]
        resolution = resolve(
            {pid: s.dependencies for pid, s in closure.items()},
            {pid: s.priority for pid, s in closure.items()},
            unavailable,
        )
        for pid, problem in resolution.problems.items():
            if self._slots[pid].plugin is None:
                continue
            report.outcomes[pid] = Outcome("skipped", self._slots[pid].state, problem.describe())
        return list(resolution.order), dict(resolution.problems)

    def _enabled(self, report: LifecycleReport) -> list[str]:
        ids = []
        for pid, slot in self._slots.items():
            if slot.plugin is None:
                report.outcomes[pid] = Outcome("failed", slot.state, slot.error)
            elif not (slot.enabled and slot.config.enabled):
                report.outcomes[pid] = Outcome("disabled", slot.state, "disabled by configuration")
            else:
                ids.append(pid)
        return ids

    def dependency_error(self, plugin_id: str) -> DependencyError | None:
        """Why ``plugin_id`` cannot start for reasons of dependencies, as an exception, or None."""
        report = LifecycleReport("plan")
        _, problems = self._plan([plugin_id], report)
        problem = problems.get(plugin_id)
        if problem is None:
            return None
        cls: type[DependencyError] = {
            "missing": MissingDependencyError,
            "cycle": DependencyCycleError,
        }.get(problem.kind, DependencyError)
        return cls(problem.describe(), plugin_id=plugin_id, chain=problem.chain)

    async def _each(
        self,
        verb: str,
        order: list[str],
        step: Callable[[str], Any],
        wants: Callable[[_Slot], bool],
        report: LifecycleReport,
        *,
        block_dependents: bool,
    ) -> LifecycleReport:
        failed: set[str] = set()
        for pid in order:
            slot = self._slots[pid]
            if pid in report.outcomes:
                continue
            blocker = next((d for d in slot.dependencies if d in failed), None)
            if block_dependents and blocker is not None:
                failed.add(pid)
                report.outcomes[pid] = Outcome(
                    "skipped", slot.state, f"dependency {blocker} failed"
                )
                continue
            if not wants(slot):
                if slot.state.is_error:
                    failed.add(pid)
                    report.outcomes[pid] = Outcome("failed", slot.state, slot.error)
                else:
                    report.outcomes[pid] = Outcome("ok", slot.state)
                continue
            try:
                await step(pid)
            except PluginError as exc:
                failed.add(pid)
                report.outcomes[pid] = Outcome("failed", slot.state, str(exc))
            else:
                report.outcomes[pid] = Outcome("ok", slot.state)
        return report

    async def load_all(self) -> LifecycleReport:
        """Load every enabled plugin, dependencies first; never raises for one plugin."""
        report = LifecycleReport("load_all")
        order, _ = self._plan(self._enabled(report), report)
        return await self._each(
            "load", order, self.load, lambda s: s.state == UNLOADED, report, block_dependents=True
        )

    async def init_all(self) -> LifecycleReport:
        """Initialise every loaded, enabled plugin that is not yet initialised."""
        report = LifecycleReport("init_all")
        order, _ = self._plan(self._enabled(report), report)
        return await self._each(
            "init_plugin",
            order,
            self.init_plugin,
            lambda s: s.state == LOADED and not s.initialized,
            report,
            block_dependents=True,
        )

    async def start_all(self) -> LifecycleReport:
        """Bring every enabled ``auto_start`` plugin (and what it needs) to RUNNING.

        A plugin starts once all its dependencies run; plugins free at the same
        time start concurrently, highest priority first, then by id. One
        plugin's failure skips only its dependents.
        """
        report = LifecycleReport("start_all")
        wanted = [pid for pid in self._enabled(report) if self._slots[pid].config.auto_start]
        order, _ = self._plan(wanted, report)
        if not order:
            return report
        position = {pid: n for n, pid in enumerate(order)}
        waiting: dict[str, int] = {}
        dependents: dict[str, list[str]] = {pid: [] for pid in order}
        for pid in order:
            deps = {dep for dep in self._slots[pid].dependencies if dep in position}
            waiting[pid] = len(deps)
            for dep in deps:
                dependents[dep].append(pid)

        loop = asyncio.get_running_loop()
        done = loop.create_future()
        remaining = len(order)
        tasks: set[asyncio.Task[None]] = set()
        ready: list[int] = []  # positions in ``order``: a heap, best first
        launching = False

        def settle(pid: str, outcome: Outcome) -> None:
            nonlocal remaining
            report.outcomes[pid] = outcome
            remaining -= 1
            if remaining == 0 and not done.done():
                done.set_result(None)

        def skip_dependents(pid: str) -> None:
            stack = [pid]
            while stack:
                failed = stack.pop()
                for child in dependents[failed]:
                    if child not in report.outcomes:
                        reason = f"dependency {failed} failed"
                        settle(child, Outcome("skipped", self._slots[child].state, reason))
                        stack.append(child)

        def launch() -> None:
            # A trampoline: with eager tasks a bring-up may finish, and release its
            # dependents, inside create_task; they queue here instead of recursing.
            nonlocal launching
            if launching:
                return
            launching = True
            try:
                while ready:
                    pid = order[heapq.heappop(ready)]
                    task = _start_task(loop, bring_up(pid))
                    if not task.done():
                        tasks.add(task)
                        task.add_done_callback(tasks.discard)
            finally:
                launching = False

        async def bring_up(pid: str) -> None:
            slot = self._slots[pid]
            try:
                if slot.state is UNLOADED:
                    await self.load(pid)
                if slot.state is LOADED:
                    await self.start(pid)
            except PluginError as exc:
                settle(pid, Outcome("failed", slot.state, str(exc)))
                skip_dependents(pid)
                return
            except BaseException as exc:
                # Not a plugin failure (a bug of ours, or cancellation): end start_all with it.
                if not done.done():
                    done.set_exception(exc)
                raise
            if slot.state is not RUNNING:
                error = slot.error if slot.state.is_error else f"plugin is {slot.state}"
                status = "failed" if slot.state.is_error else "skipped"
                settle(pid, Outcome(status, slot.state, error))
                skip_dependents(pid)
                return
            settle(pid, Outcome("ok", slot.state))
            for child in dependents[pid]:
                waiting[child] -= 1
                if waiting[child] == 0 and child not in report.outcomes:
                    heapq.heappush(ready, position[child])
            launch()

        ready.extend(n for n, pid in enumerate(order) if waiting[pid] == 0)
        launch()
        try:
            await done
        finally:
            for task in list(tasks):
                if not task.done():
                    task.cancel()
        return report

    async def stop_all(self) -> LifecycleReport:
        """Stop every running or paused plugin, in exactly the reverse of the order they started."""
        report = LifecycleReport("stop_all")
        for pid in reversed(list(self._up_order)):
            slot = self._slots[pid]
            if slot.state not in (RUNNING, PAUSED):
                continue
            try:
                await self.stop(pid)
            except PluginError as exc:
                report.outcomes[pid] = Outcome("failed", slot.state, str(exc))
            else:
                report.outcomes[pid] = Outcome("ok", slot.state)
        return report

    async def unload_all(self) -> LifecycleReport:
        """Unload every loaded plugin (and clean up failed ones), in reverse order."""
        report = LifecycleReport("unload_all")
        order = list(reversed(self._up_order))
        order += [pid for pid in reversed(self._load_order) if pid not in self._up_order]
        order += [pid for pid, s in self._slots.items() if s.state.is_error and pid not in order]
        for pid in order:
            slot = self._slots[pid]
            if not (slot.state == LOADED or (slot.state.is_error and slot.plugin is not None)):
                continue
            try:
                await self.unload(pid)
            except PluginError as exc:
                report.outcomes[pid] = Outcome("failed", slot.state, str(exc))
            else:
                report.outcomes[pid] = Outcome("ok", slot.state)
        return report

    async def shutdown(self) -> None:
        """Stop hot reloading, then stop and unload every plugin in reverse order, then wait
        for async observers."""
        await self.stop_hot_reload()
        await self.settle()
        await self.stop_all()
        await self.unload_all()
        await self.settle()
        self._watchdog.disarm()
        if self._monitor is not None:
            self._monitor.stop()

    # -- hot reload -----------------------------------------------------------------------
    # The reloader lives in mofa_kernel._reload and is imported on first use, so a host that
    # never hot-reloads never imports it (nor watchfiles). The ``_reload_*`` methods are the
    # only places where it touches the manager's bookkeeping.

    @property
    def reloader(self) -> HotReloader:
        """The hot reloader of this manager (made on first use; watches nothing until started)."""
        reloader: HotReloader | None = getattr(self, "_hot_reloader", None)
        if reloader is None:
            from ._reload import HotReloader

            reloader = self._hot_reloader = HotReloader(self)
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
        reloader: HotReloader | None = getattr(self, "_hot_reloader", None)
        if reloader is not None:
            await reloader.stop()

    def hot_reloading(
        self, *, watch_installs: bool | None = None
    ) -> contextlib.AbstractAsyncContextManager[HotReloader]:
        """``async with manager.hot_reloading():`` watches plugin code for the block's duration."""
        return self.reloader.watching(watch_installs=watch_installs)

    def _reload_context(self, plugin_id: str) -> PluginContext:
        """A context for a new instance of ``plugin_id``: its config, shared state and events."""
        slot = self._slot(plugin_id)
        return PluginContext(
            self.agent_id,
            slot.config,
            plugin_id=slot.id,
            shared_state=self._shared,
            event_sink=self._bus.emit,
        )

    def _reload_initialized(self, plugin_id: str) -> bool:
        return self._slot(plugin_id).initialized

    def _reload_calls(self, plugin_id: str) -> tuple[object, ...]:
        """The executes of ``plugin_id`` in flight now (their coroutines)."""
        return tuple(self._slot(plugin_id).table.calls)

    def _reload_swap(
        self, plugin_id: str, agent: AgentPlugin, expected: PluginState, ctx: PluginContext | None
    ) -> AgentPlugin:
        """Put ``agent`` in place of the current instance, if the plugin is still ``expected``
        and no lifecycle call runs; return the previous instance."""
        slot = self._slot(plugin_id)
        if slot.busy or slot.state != expected or slot.stopping:
            raise InvalidStateError(
                f"plugin {plugin_id!r} changed state during the reload (now {slot.state})",
                plugin_id=plugin_id,
                hook="reload",
                expected=(expected,),
                actual=slot.state,
            )
        old = self.replace_plugin(plugin_id, agent)
        self._reload_register_hooks(slot, agent)
        if ctx is not None:
            slot.ctx = ctx
        return old

    def _reload_register_hooks(self, slot: _Slot, agent: AgentPlugin) -> None:
        # A module-style plugin's hooks (on_plugin_event) are registered from its module.
        from ._adapters import HookPlugin

        if isinstance(agent, HookPlugin) and not slot.hooks_registered and has_hooks(agent.hooks):
            self._pluggy.register(agent.hooks, name=slot.id)
            slot.hooks_registered = True
            self._refresh_observers()

    def _reload_fill(self, plugin_id: str, agent: AgentPlugin) -> None:
        """Give a plugin whose code could not be imported its first instance (UNLOADED)."""
        slot = self._slot(plugin_id)
        if slot.plugin is not None:
            raise InvalidStateError(f"plugin {plugin_id!r} already has an instance")
        if agent.metadata.id != plugin_id:
            raise PluginLoadError(
                f"the new code of {plugin_id!r} describes a plugin {agent.metadata.id!r}",
                plugin_id=plugin_id,
            )
        slot.plugin = agent
        slot.metadata = agent.metadata
        slot.status = "registered"
        slot.error = None
        if has_hooks(agent):
            self._pluggy.register(agent, name=plugin_id)
            slot.hooks_registered = True
            self._refresh_observers()
        self._reload_register_hooks(slot, agent)
        self._set_state(slot, UNLOADED)

    def _reload_trust_refusal(self, plugin_id: str) -> str | None:
        """Why new code of ``plugin_id`` must not be imported under the trust lock, or None.

        Only with ``kernel.trust = "refuse"`` and for a plugin from a distribution;
        the lock file is read again, so an approval given meanwhile counts.
        """
        settings = self.settings
        source = self._slot(plugin_id).source
        if settings.kernel.trust == "off" or source is None:
            return None
        from ._trust import TrustLock, exclusion_rule

        try:
            lock = TrustLock.read(settings.trust_lock_path())
        except PluginError as exc:
            return str(exc)
        return exclusion_rule(lock, "refuse" if settings.kernel.trust == "refuse" else "warn")(
            source
        )

    def _reload_fail(self, plugin_id: str, message: str) -> None:
        """Put ``plugin_id`` in the error state because a reload failed (no rollback wanted)."""
        self._fail(self._slot(plugin_id), "reload", None, message)

    def _reload_set_source(self, plugin_id: str, source: PluginSource) -> None:
        """Record that ``plugin_id`` now comes from ``source`` (an upgraded distribution)."""
        self._slot(plugin_id).source = source

    def _reload_forget(self, plugin_id: str) -> None:
        """Drop every trace of ``plugin_id`` (its distribution was uninstalled)."""
        slot = self._slots.pop(plugin_id, None)
        self._excluded.pop(plugin_id, None)
        self._serving.pop(plugin_id, None)
        self._up_order.pop(plugin_id, None)
        self._load_order.pop(plugin_id, None)
        if slot is not None and slot.hooks_registered:
            self._pluggy.unregister(name=plugin_id)
            self._refresh_observers()
