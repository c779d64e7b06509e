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
import time
from collections.abc import Awaitable, Callable, Generator
from types import CoroutineType
from typing import Any, TypeVar, cast

__all__ = [
    "CallTable",
    "DeadlineExceeded",
    "Resume",
    "StallCredit",
    "Watchdog",
    "call_with_deadline",
    "resume_with_deadline",
]

_T = TypeVar("_T")


class DeadlineExceeded(Exception):
    """Raised by :func:`call_with_deadline` when the deadline passes."""


#: ``credit(owner, started, now)``: seconds of ``[started, now]`` during which the event loop
#: was held by someone other than ``owner``. A deadline is extended by that much, so that a
#: call delayed by another plugin's blocking is not charged for it.
StallCredit = Callable[[str | None, float, float], float]


def _no_credit(owner: str | None, started: float, now: float) -> float:
    return 0.0


class Resume:
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
    __slots__ = ("credit", "expired", "handle", "owner", "started", "task", "timeout")

    def __init__(
        self,
        task: asyncio.Task[Any],
        started: float,
        timeout: float,
        owner: str | None,
        credit: StallCredit,
    ) -> None:
        self.task = task
        self.started = started
        self.timeout = timeout
        self.owner = owner
        self.credit = credit
        self.expired = False
        self.handle: asyncio.TimerHandle | None = None

    def arm(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        deadline = self.started + self.timeout + self.credit(self.owner, self.started, now)
        if deadline > now:
            self.handle = loop.call_at(deadline, self)
        else:
            self.expired = True
            self.task.cancel()

    def __call__(self) -> None:
        self.arm()

    def cancel(self) -> None:
        if self.handle is not None:
            self.handle.cancel()


async def call_with_deadline(
    awaitable: Awaitable[_T],
    timeout: float | None,
    *,
    owner: str | None = None,
    credit: StallCredit = _no_credit,
) -> _T:
    """Await ``awaitable``; raise :class:`DeadlineExceeded` after ``timeout`` seconds.

    ``timeout=None`` means no deadline. Cancellation from outside propagates
    unchanged. ``credit`` (see :data:`StallCredit`) extends the deadline by
    the time the loop was held by others than ``owner``.
    """
    steps: Any = awaitable if isinstance(awaitable, CoroutineType) else awaitable.__await__()
    started = time.monotonic()
    try:
        pending = steps.send(None)
    except StopIteration as stop:
        return cast("_T", stop.value)
    return cast("_T", await resume_with_deadline(steps, pending, started, timeout, owner, credit))


async def resume_with_deadline(
    steps: Any,
    pending: Any,
    started: float,
    timeout: float | None,
    owner: str | None = None,
    credit: StallCredit = _no_credit,
) -> Any:
    """Finish a coroutine whose first step (begun at ``started``) suspended on ``pending``.

    The deadline is ``started + timeout`` on the monotonic clock, which is the
    clock of asyncio's loop.
    """
    resume = Resume(steps, pending)
    if timeout is None:
        return await resume
    task = asyncio.current_task()
    if task is None:  # pragma: no cover - only reachable outside a task
        return await asyncio.wait_for(resume, timeout)
    timer = _Timer(task, started, timeout, owner, credit)
    timer.arm()
    try:
        return await resume
    except asyncio.CancelledError:
        if not timer.expired:
            raise
        uncancel = getattr(task, "uncancel", None)  # 3.11+, and runners that backport it
        if uncancel is not None and uncancel() > 0:
            raise  # cancelled from outside as well: that wins
        raise DeadlineExceeded from None
    finally:
        timer.cancel()


class Watchdog:
    """Exact deadlines for calls that are awaited directly, at the cost of a dict entry each.

    A caller records ``calls[coro] = time.monotonic()`` in a per-plugin dict
    (see :class:`CallTable`) before awaiting ``coro`` and deletes it after.
    Nothing else happens per call. While any call is in flight one timer runs:
    each time it fires it cancels the calls past their deadline and sets
    itself for the earliest remaining deadline, or for ``now + min_timeout``
    so that calls begun since are seen before theirs can pass. The task to
    cancel is found, only when a deadline passes, by following each task's
    chain of awaited coroutines down to the expired one.
    """

    __slots__ = ("_handle", "_loop", "_tables", "armed", "credit", "expired", "min_timeout")

    def __init__(self) -> None:
        self._tables: list[CallTable] = []
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Expired coroutine -> the task that was cancelled for it (None if none was found).
        self.expired: dict[object, asyncio.Task[Any] | None] = {}
        self.min_timeout: float | None = None
        #: Whether the timer is set (read on every call, so a plain attribute).
        self.armed = False
        #: Time a call is not charged for: the loop held by another plugin.
        self.credit: StallCredit = _no_credit

    def table(self, timeout: float | None, owner: str | None = None) -> CallTable:
        """A new call table whose calls (``owner``'s) have ``timeout`` seconds each."""
        table = CallTable(timeout, owner)
        self._tables.append(table)
        if timeout is not None and (self.min_timeout is None or timeout < self.min_timeout):
            self.min_timeout = timeout
        return table

    def drop(self, table: CallTable) -> None:
        self._tables.remove(table)

    def arm(self, deadline: float) -> None:
        """Make sure the timer fires no later than ``deadline`` (monotonic seconds)."""
        loop = asyncio.get_running_loop()
        handle = self._handle
        if handle is not None:
            if handle.when() <= deadline and self._loop is loop:
                return
            handle.cancel()
        self._loop = loop
        self._handle = loop.call_at(deadline, self._fire)
        self.armed = True

    def disarm(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle = None
        self.armed = False

    def _fire(self) -> None:
        self._handle = None
        self.armed = False
        now = time.monotonic()
        earliest: float | None = None
        busy = False
        for table in self._tables:
            timeout = table.timeout
            if not table.calls or timeout is None:
                continue
            busy = True
            for coro, started in list(table.calls.items()):
                deadline = started + timeout
                if deadline <= now:
                    deadline += self.credit(table.owner, started, now)
                if deadline <= now:
                    if coro not in self.expired:
                        self._expire(coro)
                elif earliest is None or deadline < earliest:
                    earliest = deadline
        if not busy:
            return
        step = now + (self.min_timeout or 1.0)
        self.arm(step if earliest is None else min(earliest, step))

    def _expire(self, coro: object) -> None:
        task = _task_awaiting(coro, self._loop)
        self.expired[coro] = task
        if task is not None:
            task.cancel()


class CallTable:
    """The in-flight calls of one plugin: coroutine -> the monotonic time it began."""

    __slots__ = ("calls", "owner", "timeout")

    def __init__(self, timeout: float | None, owner: str | None = None) -> None:
        self.timeout = timeout
        self.owner = owner
        self.calls: dict[object, float] = {}


def _task_awaiting(
    coro: object, loop: asyncio.AbstractEventLoop | None
) -> asyncio.Task[Any] | None:
    """The task whose chain of awaits reaches ``coro``, if any."""
    for task in asyncio.all_tasks(loop):
        link: object = task.get_coro()
        for _ in range(10_000):  # a bound, in case of a pathological chain
            if link is coro:
                return task
            following = getattr(link, "cr_await", None)
            if following is None:
                following = getattr(link, "gi_yieldfrom", None)
            if following is None:
                break
            link = following
    return None
