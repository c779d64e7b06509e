"""Run a plugin's coroutine under a deadline, paying for the deadline only if it suspends.

Most plugin calls finish without ever suspending. :func:`call_with_deadline`
runs the coroutine's first step directly in the calling task; only when the
coroutine suspends does it arm a timer, on that same task, and keep driving
the coroutine itself. The deadline is as strict as ``asyncio.timeout``'s (a
coroutine that never yields cannot be interrupted by either), costs almost
nothing on the fast path, and ``asyncio.current_task()`` inside the plugin is
the caller's task throughout, so timeouts and cancellation the plugin uses
itself keep working.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Coroutine, Generator
from types import CoroutineType
from typing import Any, TypeVar, cast

__all__ = ["DeadlineExceeded", "call_with_deadline"]

_T = TypeVar("_T")


class DeadlineExceeded(Exception):
    """Raised by :func:`call_with_deadline` when the deadline passes."""


class _Resume:
    """Drive an already-started coroutine from the current task, step by step."""

    __slots__ = ("_first", "_steps")

    def __init__(self, steps: Any, first: Any) -> None:
        self._steps = steps
        self._first = first

    def __await__(self) -> Generator[Any, None, Any]:
        steps = self._steps
        pending = self._first
        while True:
            try:
                yield pending
            except BaseException as exc:  # noqa: BLE001 - every throw is handed on to the plugin
                try:
                    pending = steps.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    pending = steps.send(None)
                except StopIteration as stop:
                    return stop.value


class _Timer:
    __slots__ = ("expired", "task")

    def __init__(self, task: asyncio.Task[Any]) -> None:
        self.task = task
        self.expired = False

    def __call__(self) -> None:
        self.expired = True
        self.task.cancel()


async def call_with_deadline(awaitable: Awaitable[_T], timeout: float | None) -> _T:
    """Await ``awaitable``; raise :class:`DeadlineExceeded` after ``timeout`` seconds.

    ``timeout=None`` means no deadline. Cancellation from outside propagates
    unchanged.
    """
    if isinstance(awaitable, CoroutineType):
        steps: Any = awaitable
    else:
        steps = awaitable.__await__()
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        pending = steps.send(None)
    except StopIteration as stop:
        return cast("_T", stop.value)
    resume = _Resume(steps, pending)
    if timeout is None:
        return cast("_T", await resume)
    task = asyncio.current_task()
    if task is None:  # pragma: no cover - only reachable outside a task
        return cast("_T", await asyncio.wait_for(resume, timeout))
    timer = _Timer(task)
    handle = loop.call_at(started + timeout, timer)
    try:
        return cast("_T", await resume)
    except asyncio.CancelledError:
        if not timer.expired:
            raise
        if sys.version_info >= (3, 11) and task.uncancel() > 0:
            raise  # cancelled from outside as well: that wins
        raise DeadlineExceeded from None
    finally:
        handle.cancel()


def close_quietly(coro: Coroutine[Any, Any, Any]) -> None:
    """Close a coroutine that will never be awaited, without a 'never awaited' warning."""
    coro.close()
