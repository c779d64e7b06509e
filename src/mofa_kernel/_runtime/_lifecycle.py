"""The lifecycle: the transition table, and the only code that writes a plugin's state.

:data:`TRANSITIONS` is the contract's transition table as data: for each verb,
the states it may start from, the state while the plugin's hook runs, the
state after it and the event it emits. :class:`Lifecycle` runs one verb on one
plugin by that table, through the plugin caller, and turns any failure into
``PluginState.error(message)`` plus a ``PluginError`` event.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Coroutine
from typing import Any, Final

import attrs

from mofa_kernel._context import PluginContext
from mofa_kernel._deadline import DeadlineExceeded
from mofa_kernel._errors import (
    InvalidStateError,
    PluginError,
    PluginExecutionError,
    PluginInitError,
    PluginLifecycleError,
    PluginLoadError,
    PluginTimeoutError,
)
from mofa_kernel._event_bus import EventBus
from mofa_kernel._events import PluginEvent
from mofa_kernel._plugin import AgentPlugin
from mofa_kernel._types import PluginState

from ._calls import PluginCaller, describe
from ._registry import Entry, Registry

__all__ = ["TRANSITIONS", "Lifecycle", "Transition"]

UNLOADED: Final = PluginState.UNLOADED
LOADING: Final = PluginState.LOADING
LOADED: Final = PluginState.LOADED
RUNNING: Final = PluginState.RUNNING
PAUSED: Final = PluginState.PAUSED

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


@attrs.frozen
class Transition:
    """One verb of the lifecycle.

    ``allowed``: the states it may begin in; ``during``: the state while the
    hook runs (``None``: unchanged); ``after``: the state once it returned
    (``None``: unchanged); ``event``: what it emits after the state change.
    """

    verb: str
    allowed: tuple[PluginState, ...]
    during: PluginState | None = None
    after: PluginState | None = None
    event: Callable[..., PluginEvent] | None = None


#: The contract's transition table. From an error state only ``unload`` (cleanup) is
#: allowed; :meth:`Lifecycle.unload` handles that case.
TRANSITIONS: Final[dict[str, Transition]] = {
    t.verb: t
    for t in (
        Transition("load", (UNLOADED,), LOADING, LOADED, PluginEvent.PluginLoaded),
        Transition("init_plugin", (LOADED,)),
        Transition("start", (LOADED,), None, RUNNING),
        Transition("pause", (RUNNING,), None, PAUSED),
        Transition("resume", (PAUSED,), None, RUNNING),
        Transition("stop", (RUNNING, PAUSED), None, LOADED),
        Transition("unload", (LOADED,), None, UNLOADED, PluginEvent.PluginUnloaded),
    )
}

_ERROR_CLASSES: Final[dict[str, type[PluginError]]] = {
    "load": PluginLoadError,
    "init_plugin": PluginInitError,
    "execute": PluginExecutionError,
    "health_check": PluginExecutionError,
    "stats": PluginExecutionError,
}


class Lifecycle:
    """Runs the verbs of :data:`TRANSITIONS` on entries and owns their state.

    ``make_context`` builds the ``PluginContext`` a plugin receives in
    ``load``; ``on_down`` is told when a plugin that was up fails, so that
    its dependents can be taken down (the scheduler's job).
    """

    def __init__(
        self,
        registry: Registry,
        caller: PluginCaller,
        bus: EventBus,
        make_context: Callable[[Entry], PluginContext],
    ) -> None:
        self._registry = registry
        self._serving = registry.serving
        self._caller = caller
        self._bus = bus
        self._emit = bus.emit
        self._make_context = make_context
        self.on_down: Callable[[str], None] = _ignore
        caller.on_fault = self.fail

    # -- state ----------------------------------------------------------------------------

    def set_state(self, entry: Entry, new: PluginState) -> None:
        """Change ``entry``'s state (the only place that does), and emit StateChanged."""
        old = entry.state
        if old is new or old == new:
            return
        entry.state = new
        if new is RUNNING and not entry.stopping:
            self._serving[entry.id] = entry
        else:
            self._serving.pop(entry.id, None)
        plugin = entry.plugin
        if plugin is not None and entry.mirror_state:
            try:
                plugin.state = new
            except AttributeError:
                entry.mirror_state = False  # a read-only ``state``: the kernel's is the truth
            except BaseException as exc:  # noqa: BLE001 - the plugin's setter is plugin code
                entry.mirror_state = False
                self._emit(_state_changed(entry.id, old, new))
                if not new.is_error:
                    self.fail(entry, "state", exc, f"its state setter raised {describe(exc)}")
                return
        self._emit(_state_changed(entry.id, old, new))

    def mirror(self, entry: Entry) -> None:
        """Copy ``entry``'s state onto a plugin object that has just taken its place."""
        plugin = entry.plugin
        if plugin is None or not entry.mirror_state:
            return
        try:
            plugin.state = entry.state
        except AttributeError:
            entry.mirror_state = False
        except BaseException as exc:  # noqa: BLE001 - the plugin's setter is plugin code
            entry.mirror_state = False
            if not entry.state.is_error:
                self.fail(entry, "state", exc, f"its state setter raised {describe(exc)}")

    def set_initial(self, entry: Entry, state: PluginState) -> None:
        """The state of a plugin the kernel has just met (no event: nobody saw another)."""
        entry.state = state

    def fail(self, entry: Entry, hook: str, exc: BaseException | None, note: str) -> PluginError:
        """Put ``entry`` in the error state, emit PluginError, and return the error to raise."""
        if isinstance(exc, DeadlineExceeded):
            message = f"{hook} timed out after {entry.timeout:g}s"
            error: PluginError = PluginTimeoutError(
                message, plugin_id=entry.id, hook=hook, timeout=entry.timeout
            )
        else:
            message = f"{hook} failed: {note}"
            cls = _ERROR_CLASSES.get(hook, PluginLifecycleError)
            error = cls(message, plugin_id=entry.id, hook=hook)
        if entry.source is not None:
            error.distribution = entry.source.distribution
            error.entry_point = entry.source.entry_point
        was_up = entry.state is RUNNING or entry.state is PAUSED
        entry.error = message
        self.set_state(entry, PluginState.error(message))
        self._emit(PluginEvent.PluginError(plugin_id=entry.id, error=message))
        if was_up:
            self.on_down(entry.id)
        return error

    def report(self, entry: Entry, message: str) -> None:
        """Tell the event stream why ``entry`` stays down, without changing its state."""
        entry.reason = message
        self._emit(PluginEvent.PluginError(plugin_id=entry.id, error=message))

    def check(self, entry: Entry, verb: str, allowed: tuple[PluginState, ...]) -> AgentPlugin:
        """The plugin object, if ``verb`` may run on ``entry`` now; else InvalidStateError."""
        if entry.busy:
            raise InvalidStateError(
                f"plugin {entry.id!r}: cannot {verb} while another lifecycle call is in progress",
                plugin_id=entry.id,
                hook=verb,
                expected=allowed,
                actual=entry.state,
            )
        if entry.state not in allowed:
            names = " or ".join(str(s) for s in allowed)
            raise InvalidStateError(
                f"plugin {entry.id!r}: cannot {verb} in state {entry.state}; it must be {names}",
                plugin_id=entry.id,
                hook=verb,
                expected=allowed,
                actual=entry.state,
            )
        if entry.plugin is None:
            raise InvalidStateError(
                f"plugin {entry.id!r} could not be loaded: {entry.error}",
                plugin_id=entry.id,
                hook=verb,
                expected=allowed,
                actual=entry.state,
            )
        return entry.plugin

    # -- the verbs ------------------------------------------------------------------------

    async def _run(self, entry: Entry, transition: Transition, plugin: AgentPlugin) -> None:
        """Run ``transition``'s hook on ``plugin`` and apply the table's states and event."""
        verb = transition.verb
        entry.busy = True
        try:
            if transition.during is not None:
                self.set_state(entry, transition.during)
            if verb == "load":
                ctx = entry.ctx = self._make_context(entry)
                # -- plugin settings (issue 14, CONTRACT "Plugin settings"): typed before load
                from mofa_kernel._settings import PluginConfigError, plugin_settings

                try:
                    ctx.settings = plugin_settings(entry.id, plugin, ctx.config.settings)
                except PluginConfigError as exc:
                    raise self.fail(entry, verb, None, str(exc)) from None
                # -- end plugin settings
                await self._caller.invoke(entry, verb, lambda: plugin.load(ctx))
            else:
                await self._caller.invoke(entry, verb, getattr(plugin, verb))
            self._after(entry, verb)
            if transition.after is not None:
                self.set_state(entry, transition.after)
            if transition.event is not None:
                self._emit(transition.event(plugin_id=entry.id))
        finally:
            entry.busy = False

    def _after(self, entry: Entry, verb: str) -> None:
        """The bookkeeping of a verb that succeeded, before its state change."""
        registry = self._registry
        if verb == "load":
            entry.loaded = True
            entry.error = None
            registry.load_order[entry.id] = None
        elif verb == "init_plugin":
            entry.initialized = True
        elif verb == "start":
            entry.stopping = False
            entry.reason = None
            entry.waiting_for = None
            registry.up_order.pop(entry.id, None)
            registry.up_order[entry.id] = None
        elif verb == "unload":
            self._forget_instance_state(entry)

    def _forget_instance_state(self, entry: Entry) -> None:
        entry.loaded = False
        entry.initialized = False
        self._registry.up_order.pop(entry.id, None)
        self._registry.load_order.pop(entry.id, None)

    # The verbs that need no work of their own around the call are plain functions that
    # check, then return the transition's coroutine: one coroutine per step, not two.

    def load(self, entry: Entry) -> Coroutine[Any, Any, None]:
        """UNLOADED -> LOADING -> LOADED; emits PluginLoaded."""
        transition = TRANSITIONS["load"]
        plugin = self.check(entry, "load", transition.allowed)
        self._caller.watch_loop()
        return self._run(entry, transition, plugin)

    def _plain(self, verb: str, entry: Entry) -> Coroutine[Any, Any, None]:
        """A verb that is its table row and nothing more: check, then run the transition."""
        transition = TRANSITIONS[verb]
        return self._run(entry, transition, self.check(entry, verb, transition.allowed))

    def init_plugin(self, entry: Entry) -> Coroutine[Any, Any, None]:
        """Apply configuration; the plugin stays LOADED (no StateChanged)."""
        return self._plain("init_plugin", entry)

    async def start(self, entry: Entry) -> None:
        """LOADED -> RUNNING, initialising first if that has not been done."""
        transition = TRANSITIONS["start"]
        plugin = self.check(entry, "start", transition.allowed)
        if not entry.initialized:
            await self.init_plugin(entry)
        await self._run(entry, transition, plugin)

    def pause(self, entry: Entry) -> Coroutine[Any, Any, None]:
        """RUNNING -> PAUSED."""
        return self._plain("pause", entry)

    def resume(self, entry: Entry) -> Coroutine[Any, Any, None]:
        """PAUSED -> RUNNING."""
        return self._plain("resume", entry)

    async def stop(self, entry: Entry) -> None:
        """RUNNING or PAUSED -> LOADED. New executes are refused from the moment it begins."""
        transition = TRANSITIONS["stop"]
        plugin = self.check(entry, "stop", transition.allowed)
        entry.stopping = True
        self._serving.pop(entry.id, None)
        try:
            await self._run(entry, transition, plugin)
        finally:
            entry.stopping = False
            if entry.state is RUNNING:  # the stop failed in a way that left it running
                self._serving[entry.id] = entry

    async def unload(self, entry: Entry) -> None:
        """LOADED or ERROR -> UNLOADED; emits PluginUnloaded.

        From ERROR this is the cleanup step: the plugin's ``unload`` runs only
        if its ``load`` had completed. A plugin that could not be imported at
        all has nothing to clean up and stays in ERROR.
        """
        transition = TRANSITIONS["unload"]
        if entry.state.is_error:
            if entry.plugin is None:
                return
            plugin = self.check(entry, "unload", (entry.state,))
            if not entry.loaded:
                self.finish_unload(entry)
                return
        else:
            plugin = self.check(entry, "unload", transition.allowed)
        await self._run(entry, transition, plugin)

    def finish_unload(self, entry: Entry) -> None:
        """UNLOADED without running the plugin's ``unload`` (nothing to clean up)."""
        self._forget_instance_state(entry)
        self.set_state(entry, UNLOADED)
        self._emit(PluginEvent.PluginUnloaded(plugin_id=entry.id))

    async def cleanup(self, entry: Entry) -> None:
        """Bring ``entry`` down from wherever it is (stop, then unload); failures are recorded
        on the entry and emitted, never raised."""
        with contextlib.suppress(PluginError):
            if entry.state in (RUNNING, PAUSED) and not entry.busy:
                await self.stop(entry)
            if entry.state is LOADED or (entry.state.is_error and not entry.busy):
                await self.unload(entry)


def _ignore(plugin_id: str) -> None:
    return None
