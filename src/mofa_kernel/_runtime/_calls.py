"""The plugin caller: the only code in the kernel that runs plugin code.

Every lifecycle call, every execute, health check and stats call goes through
:class:`PluginCaller`. It applies the plugin's deadline, checks what came
back, watches for a plugin that blocks the event loop, and turns whatever
the plugin raised into a contained failure. It decides *that* a call failed
and why; what follows (the error state, the ``PluginError`` event, taking
dependents down) belongs to the lifecycle, which it reaches through the
``on_fault`` callback it is given.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable
from types import CodeType, CoroutineType, FrameType
from typing import Any, Final, cast

from mofa_kernel._blocking import BlockIncident, FrameReader, LoopMonitor, frame_local
from mofa_kernel._deadline import (
    DeadlineExceeded,
    StallCredit,
    Watchdog,
    call_with_deadline,
)
from mofa_kernel._errors import InvalidStateError, PluginError, PluginExecutionError
from mofa_kernel._types import PluginState

from ._describe import describe
from ._guard import GUARD_CODE, TaskGuard, read_guard_frame
from ._registry import Entry, Registry

__all__ = [
    "FaultSink",
    "PluginCaller",
    "TrialFailed",
    "WrongReturn",
    "describe",
    "trial",
    "wake_idle",
]

_monotonic = time.monotonic
_NOT_EXPIRED: Final = object()

#: The lifecycle's answer to a failed call: put the plugin in the error state and return the
#: error to raise. ``exc`` is the plugin's exception (``DeadlineExceeded`` for a timeout) or
#: None when ``note`` says it all.
FaultSink = Callable[[Entry, str, "BaseException | None", str], PluginError]

_RETURNS_NOTHING: Final = frozenset(
    {"load", "init_plugin", "start", "pause", "resume", "stop", "unload", "restore_state"}
)

#: The frame locals the loop monitor reads to name a blocking call (see ``_anchors``).
_ENTRY_LOCAL: Final = "entry"
_HOOK_LOCAL: Final = "hook"


class WrongReturn(Exception):
    """A plugin call misbehaved without raising: a value where nothing is due, or a
    blocked event loop noticed while the call was running."""


async def _as_coroutine(value: Any) -> Any:
    """Wrap what a non-``async`` execute returned (a value or another awaitable)."""
    if hasattr(value, "__await__"):
        return await value
    return value


def _cause(exc: BaseException) -> BaseException | None:
    # A timeout has no useful cause; every other failure keeps the plugin's exception.
    return None if isinstance(exc, DeadlineExceeded) else exc


class PluginCaller:
    """Runs plugin code under deadlines and contains what it does wrong.

    ``on_fault`` must be set (by the lifecycle) before the first call.
    """

    def __init__(self, registry: Registry, *, block_limit: float | None) -> None:
        self._registry = registry
        self._serving = registry.serving
        self._watchdog: Watchdog = registry.watchdog
        #: A plugin call that keeps the event loop blocked for longer than this many
        #: seconds is a fault (``None``: do not watch).
        self.block_limit = block_limit
        self.on_fault: FaultSink = _no_sink
        self._monitor: LoopMonitor | None = None
        #: Set from the monitor's thread when it sees a blocked loop; read on every execute.
        self._incident_seen = False
        self._claiming: Entry | None = None
        self._guard: TaskGuard | None = None
        self._credit: StallCredit = _no_credit
        self.trace = os.environ.get("MOFA_TRACE", "") not in ("", "0")

    # -- the blocked-loop watch -------------------------------------------------------------

    def _anchors(self) -> dict[CodeType, FrameReader]:
        """The caller's own frames that tell the monitor which plugin call is running.

        Both functions keep the plugin's entry in a local named ``entry`` (and
        ``_invoke`` the hook name in ``hook``); checked here, so a rename fails loudly.
        """
        anchors: dict[CodeType, FrameReader] = {
            PluginCaller.execute.__code__: _read_execute_frame,
            PluginCaller.invoke.__code__: _read_invoke_frame,
        }
        for code in anchors:
            missing = {_ENTRY_LOCAL, _HOOK_LOCAL} - set(code.co_varnames)
            if code is PluginCaller.execute.__code__:
                missing.discard(_HOOK_LOCAL)
            if missing:  # pragma: no cover - a development-time guard
                raise RuntimeError(f"{code.co_name} lost its locals {sorted(missing)}")
        return anchors

    def watch_loop(self) -> None:
        """Guard the tasks plugins start, and watch for plugins that block the event loop
        (see ``_guard`` and ``_blocking``)."""
        loop = asyncio.get_running_loop()
        if self._guard is None:
            entries = self._registry.entries
            self._guard = TaskGuard(
                self._fault,
                frozenset(self._anchors()),
                lambda entry: entries.get(entry.id) is entry,
            )
        self._guard.install(loop)
        if self.block_limit is None:
            return
        if self._monitor is None:
            anchors = self._anchors()
            anchors[GUARD_CODE] = read_guard_frame
            self._monitor = LoopMonitor(
                self.block_limit, anchors, self._blocked, on_seen=self._incident_noticed
            )
            self._credit = self._watchdog.credit = self._monitor.stalled
        self._monitor.start(loop)

    def _fault(self, entry: Entry, hook: str, exc: BaseException | None, note: str) -> PluginError:
        return self.on_fault(entry, hook, exc, note)

    def stop_watching(self) -> None:
        self._watchdog.disarm()
        if self._guard is not None:
            self._guard.remove()
        if self._monitor is not None:
            self._monitor.stop()

    def _blocked(self, incident: BlockIncident) -> None:
        entry = self._registry.entries.get(incident.plugin_id)
        if entry is None or entry.state.is_error:
            return
        if entry.busy or entry is self._claiming:
            # The call that blocked is still on its way out: it fails as it returns.
            entry.pending_fault = incident.describe()
            return
        self.on_fault(entry, incident.hook, None, incident.describe())

    def _incident_noticed(self) -> None:
        # Called from the monitor's thread: one plain assignment, read by the loop.
        self._incident_seen = True

    def _claim_incidents(self, entry: Entry) -> str | None:
        """Deliver what the loop monitor saw; return the fault of ``entry``'s call, if any."""
        self._incident_seen = False
        monitor = self._monitor
        if monitor is not None:
            self._claiming = entry
            try:
                monitor.deliver()
            finally:
                self._claiming = None
        fault, entry.pending_fault = entry.pending_fault, None
        return fault

    # -- calls -----------------------------------------------------------------------------

    async def invoke(self, entry: Entry, hook: str, call: Callable[[], Any]) -> Any:
        """Run one plugin call under the entry's deadline; a failure becomes its error."""
        started = time.perf_counter() if self.trace else 0.0
        try:
            result = call()
            if isinstance(result, CoroutineType) or hasattr(result, "__await__"):
                result = await call_with_deadline(
                    result, entry.timeout, owner=entry.id, credit=self._credit
                )
            if result is not None and hook in _RETURNS_NOTHING:
                raise WrongReturn(f"returned {type(result).__name__}, expected None")
            if self._incident_seen or entry.pending_fault is not None:
                fault = self._claim_incidents(entry)  # this call blocked the loop: it fails
                if fault is not None:
                    raise WrongReturn(fault)
        except BaseException as exc:
            self._trace_call(entry, hook, started, "failed")
            failure = self.classify(entry, hook, exc)
            if failure is exc:
                raise
            raise failure from _cause(exc)
        self._trace_call(entry, hook, started, "ok")
        return result

    async def execute(self, plugin_id: str, input: str) -> str:
        """Run ``execute(input)`` of a serving plugin under its deadline (the hot path)."""
        entry = self._serving.get(plugin_id)
        if entry is None:
            raise self._not_serving(plugin_id)
        plugin = entry.plugin
        assert plugin is not None
        table = entry.table
        watchdog = self._watchdog
        expired: object = _NOT_EXPIRED
        # The coroutine is awaited directly; its deadline costs one dict entry, which the
        # watchdog reads only when its timer fires (see _deadline.Watchdog).
        try:
            coro = plugin.execute(input)
            if type(coro) is not CoroutineType:
                coro = _as_coroutine(coro)
            began = table.calls[coro] = _monotonic()
            if not watchdog.armed and table.timeout is not None:
                watchdog.arm(began + table.timeout)
            try:
                result = await coro
            finally:
                del table.calls[coro]
                if watchdog.expired:
                    expired = watchdog.expired.pop(coro, _NOT_EXPIRED)
                if entry.idle_waiters and not table.calls:
                    wake_idle(entry)
        except asyncio.CancelledError as exc:
            if expired is not _NOT_EXPIRED:
                raise self._timed_out(entry, cast("asyncio.Task[Any] | None", expired)) from None
            failure = self.classify(entry, "execute", exc)
            if failure is exc:
                raise
            raise failure from exc
        except BaseException as exc:
            failure = self.classify(entry, "execute", exc)
            if failure is exc:
                raise
            raise failure from exc
        if self._incident_seen:
            fault = self._claim_incidents(entry)
            if fault is not None:  # this execute blocked the event loop
                raise self.on_fault(entry, "execute", None, fault)
        if type(result) is not str:
            raise self.on_fault(
                entry, "execute", None, f"returned {type(result).__name__}, expected str"
            )
        return result

    async def execute_traced(self, plugin_id: str, input: str) -> str:
        """:meth:`execute`, timed on stderr (``MOFA_TRACE=1``): the manager uses this one
        instead, so the untraced path checks nothing for tracing."""
        started = time.perf_counter()
        try:
            result = await self.execute(plugin_id, input)
        except BaseException:
            entry = self._registry.entries.get(plugin_id)
            if entry is not None:
                self._trace_call(entry, "execute", started, "failed")
            raise
        self._trace_call(self._registry.entries[plugin_id], "execute", started, "ok")
        return result

    async def wait_idle(self, entry: Entry, timeout: float | None) -> bool:
        """Wait until ``entry`` has no execute in flight; ``False`` if ``timeout`` passes."""
        if not entry.table.calls:
            return True
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry.idle_waiters.append(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), timeout)
        except asyncio.TimeoutError:
            return False
        finally:
            if waiter in entry.idle_waiters:
                entry.idle_waiters.remove(waiter)
        return True

    async def health_of(self, entries: list[Entry]) -> dict[str, bool]:
        """Each plugin's health by id; a plugin that cannot answer is unhealthy."""
        health: dict[str, bool] = {}
        for entry in entries:
            plugin = entry.plugin
            if plugin is None or entry.state.is_error or not entry.loaded:
                health[entry.id] = False
                continue
            try:
                health[entry.id] = await self.answer(
                    entry, "health_check", plugin.health_check, bool
                )
            except PluginError:
                health[entry.id] = False
        return health

    async def stats_of(self, entries: list[Entry]) -> dict[str, dict[str, Any]]:
        """Each plugin's ``stats()`` by id; a failing one gives ``{"error": ...}``."""
        out: dict[str, dict[str, Any]] = {}
        for entry in entries:
            plugin = entry.plugin
            if plugin is None:
                out[entry.id] = {"error": entry.error}
                continue
            try:
                out[entry.id] = await self.answer(entry, "stats", plugin.stats, dict)
            except PluginError as exc:
                out[entry.id] = {"error": str(exc)}
        return out

    async def answer(self, entry: Entry, hook: str, call: Callable[[], Any], kind: type) -> Any:
        """Run a query hook (``health_check``, ``stats``) whose answer must be a ``kind``."""
        answer = await self.invoke(entry, hook, call)
        if not isinstance(answer, kind) or (kind is bool and type(answer) is not bool):
            raise self.on_fault(entry, hook, None, f"returned {type(answer).__name__}")
        return answer

    async def trial(
        self, step: str, call: Callable[[], Any], timeout: float | None, *, returns: bool = False
    ) -> Any:
        """Run plugin code of an instance not in service yet (see :func:`trial`)."""
        return await trial(step, call, timeout, returns=returns)

    def classify(self, entry: Entry, hook: str, exc: BaseException) -> BaseException:
        """What to raise for ``exc`` from plugin code: a contained failure, or ``exc`` itself."""
        if isinstance(exc, PluginExecutionError) and hook == "execute" and _printable(exc):
            if exc.plugin_id is None:  # the plugin rejected this input; it stays running
                exc.plugin_id = entry.id
                exc.hook = hook
                return exc
            if exc.plugin_id == entry.id:
                return exc
            # An error naming another plugin: the culprit is the one that raised it.
            return PluginExecutionError(
                f"execute failed: {describe(exc)}", plugin_id=entry.id, hook=hook
            )
        if isinstance(exc, DeadlineExceeded):
            return self.on_fault(entry, hook, exc, "")
        if isinstance(exc, WrongReturn):
            return self.on_fault(entry, hook, None, str(exc))
        if isinstance(exc, asyncio.CancelledError):
            # Only when nobody is cancelling the caller did the plugin raise it on its own
            # (tasks with cancelling(), 3.11+, can tell; otherwise it is the caller's).
            cancelling = getattr(asyncio.current_task(), "cancelling", None)
            if cancelling is not None and cancelling() == 0:
                return self.on_fault(entry, hook, exc, "raised CancelledError")
            return exc
        if isinstance(exc, KeyboardInterrupt):
            return exc  # the person at the terminal asking the host to stop
        # Everything else, BaseException subclasses included (SystemExit, GeneratorExit, ...).
        return self.on_fault(entry, hook, exc, describe(exc))

    def _not_serving(self, plugin_id: str) -> PluginError:
        entry = self._registry.get(plugin_id)  # raises for an unknown id
        return InvalidStateError(
            f"plugin {plugin_id!r}: cannot execute in state {entry.state}; it must be Running",
            plugin_id=plugin_id,
            hook="execute",
            expected=(PluginState.RUNNING,),
            actual=entry.state,
        )

    def _timed_out(self, entry: Entry, task: asyncio.Task[Any] | None) -> PluginError:
        # Take back the watchdog's cancel request (3.11+, and runners that backport it).
        uncancel = getattr(task, "uncancel", None)
        if uncancel is not None:
            uncancel()
        return self.on_fault(entry, "execute", DeadlineExceeded(), "")

    def _trace_call(self, entry: Entry, hook: str, started: float, outcome: str) -> None:
        if self.trace:
            elapsed = (time.perf_counter() - started) * 1000
            print(f"mofa: {entry.id}.{hook} {outcome} in {elapsed:.3f} ms", file=sys.stderr)


async def trial(
    step: str, call: Callable[[], Any], timeout: float | None, *, returns: bool = False
) -> Any:
    """Run plugin code of an instance not in service yet (a reload's new instance, a
    conformance check) under ``timeout``; a failure raises :class:`TrialFailed` and
    changes no plugin's state. ``returns``: the call answers a value (else None is due).
    """
    try:
        result = call()
        if isinstance(result, CoroutineType) or hasattr(result, "__await__"):
            result = await call_with_deadline(result, timeout)
    except DeadlineExceeded:
        raise TrialFailed(step, None, f"{step}: timed out after {timeout:g}s", timeout) from None
    except asyncio.CancelledError as exc:
        cancelling = getattr(asyncio.current_task(), "cancelling", None)
        if cancelling is None or cancelling() > 0:
            raise  # the caller is being cancelled: not the plugin's doing
        raise TrialFailed(step, exc, f"{step}: raised CancelledError") from exc
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        raise TrialFailed(step, exc, f"{step} failed: {describe(exc)}") from exc
    if not returns and result is not None:
        raise TrialFailed(step, None, f"{step}: returned {type(result).__name__}, expected None")
    return result


def _printable(exc: BaseException) -> bool:
    """Whether ``str(exc)`` works (a plugin's own exception class may break it)."""
    try:
        str(exc)
    except BaseException:  # noqa: BLE001 - a plugin's __str__ may raise anything
        return False
    return True


def wake_idle(entry: Entry) -> None:
    """Release whoever waits for ``entry`` to have no execute in flight."""
    for waiter in entry.idle_waiters:
        if not waiter.done():
            waiter.set_result(None)
    entry.idle_waiters.clear()


def _read_execute_frame(frame: FrameType) -> tuple[str, str] | None:
    entry = frame_local(frame, _ENTRY_LOCAL)
    return (entry.id, "execute") if isinstance(entry, Entry) else None


def _read_invoke_frame(frame: FrameType) -> tuple[str, str] | None:
    entry, hook = frame_local(frame, _ENTRY_LOCAL), frame_local(frame, _HOOK_LOCAL)
    return (entry.id, hook) if isinstance(entry, Entry) and isinstance(hook, str) else None


def _no_credit(owner: str | None, started: float, now: float) -> float:
    return 0.0


def _no_sink(entry: Entry, hook: str, exc: BaseException | None, note: str) -> PluginError:
    raise RuntimeError("PluginCaller.on_fault was not set")  # pragma: no cover


class TrialFailed(Exception):
    """A call of :meth:`PluginCaller.trial` failed: ``cause`` is the plugin's exception
    (``None`` for a timeout or a wrong answer, which ``note`` describes)."""

    def __init__(
        self, step: str, cause: BaseException | None, note: str, timeout: float | None = None
    ) -> None:
        super().__init__(note)
        self.step = step
        self.cause = cause
        self.note = note
        self.timeout = timeout
