"""Tasks a plugin starts: attributed to it, and contained.

asyncio lets a ``SystemExit`` (or any ``BaseException`` that is not an
``Exception``) raised inside a task escape the event loop, which ends the
host. While a manager drives plugins, :class:`TaskGuard` installs a task
factory on the loop: a task created while plugin code runs (found by the
caller's own frames on the stack, or from inside another guarded task) runs
inside a small wrapper that turns such an exception into a failure of the
plugin that started the task. Other tasks are created exactly as before,
through the loop's previous factory if it had one.
"""

from __future__ import annotations

import asyncio
import sys
import weakref
from collections.abc import Callable, Coroutine
from types import CodeType, FrameType
from typing import Any, Final

from mofa_kernel._errors import PluginError

from ._describe import describe
from ._registry import Entry

__all__ = ["GUARD_CODE", "TaskGuard", "is_guard_frame", "read_guard_frame"]

_ENTRY_LOCAL: Final = "entry"
#: How far up the stack to look for the plugin call that creates a task.
_STACK_LIMIT: Final = 64

_Factory = Callable[..., "asyncio.Future[Any]"]
#: What the guard reports a fault to (the plugin caller's fault sink).
_Fault = Callable[[Entry, str, "BaseException | None", str], PluginError]


async def _guarded(entry: Entry, coro: Coroutine[Any, Any, Any], fault: _Fault) -> Any:
    """Run a plugin's task; a non-``Exception`` it raises fails the plugin instead of the host."""
    try:
        return await coro
    except (KeyboardInterrupt, asyncio.CancelledError, Exception):
        raise
    except BaseException as exc:
        raise fault(entry, "task", exc, describe(exc)) from exc


GUARD_CODE: Final[CodeType] = _guarded.__code__


def is_guard_frame(frame: FrameType) -> bool:
    """Whether ``frame`` is the wrapper of a guarded task (not the plugin's own code)."""
    return frame.f_code is GUARD_CODE


def read_guard_frame(frame: FrameType) -> tuple[str, str] | None:
    """For the loop monitor: the plugin whose task is running in ``frame``."""
    entry = frame.f_locals.get(_ENTRY_LOCAL)
    return (entry.id, "task") if isinstance(entry, Entry) else None


class TaskGuard:
    """Installs and removes the task factory described in the module docstring."""

    def __init__(
        self, fault: _Fault, anchors: frozenset[CodeType], owns: Callable[[Entry], bool]
    ) -> None:
        self._fault = fault
        #: Whether an entry is one of this guard's manager (several may share a loop).
        self._owns = owns
        #: Code objects whose frames hold the ``entry`` of the plugin being called.
        self._anchors = anchors | {GUARD_CODE}
        self._loop: asyncio.AbstractEventLoop | None = None
        #: The loop's factory while installed: it holds this guard weakly, so that a manager
        #: nobody shut down can still be collected (its factory then only passes tasks on).
        self._ours = _WeakFactory(self)

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        """Guard the tasks plugins create on ``loop`` (idempotent)."""
        if self._loop is loop and loop.get_task_factory() is self._ours:
            return
        self.remove()
        self._ours.previous = loop.get_task_factory()
        self._loop = loop
        loop.set_task_factory(self._ours)

    def remove(self) -> None:
        """Give the loop its previous task factory back, if ours is still in place."""
        loop, self._loop = self._loop, None
        if loop is not None and not loop.is_closed() and loop.get_task_factory() is self._ours:
            loop.set_task_factory(self._ours.previous)
        self._ours.previous = None

    def wrap(self, coro: Any) -> Any:
        """``coro``, guarded if plugin code of this guard's manager is creating it."""
        if asyncio.iscoroutine(coro) and getattr(coro, "cr_code", None) is not GUARD_CODE:
            entry = self._owner()
            if entry is not None and self._owns(entry):
                return _guarded(entry, coro, self._fault)
        return coro

    def _owner(self) -> Entry | None:
        """The plugin whose code is creating a task now, from the frames on the stack."""
        frame: FrameType | None = sys._getframe(3)
        anchors = self._anchors
        for _ in range(_STACK_LIMIT):
            if frame is None:
                return None
            if frame.f_code in anchors:
                entry = frame.f_locals.get(_ENTRY_LOCAL)
                return entry if isinstance(entry, Entry) else None
            frame = frame.f_back
        return None


class _WeakFactory:
    """A loop task factory that guards through a :class:`TaskGuard` while it lives."""

    __slots__ = ("_guard", "previous")

    def __init__(self, guard: TaskGuard) -> None:
        self._guard = weakref.ref(guard)
        self.previous: _Factory | None = None

    def __call__(
        self, loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any
    ) -> asyncio.Future[Any]:
        guard = self._guard()
        if guard is not None:
            coro = guard.wrap(coro)
        if self.previous is not None:
            return self.previous(loop, coro, **kwargs)
        return asyncio.Task(coro, loop=loop, **kwargs)
