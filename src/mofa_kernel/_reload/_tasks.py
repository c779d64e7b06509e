"""Finding the background tasks of one plugin instance, to cancel them when it retires.

A task belongs to an instance when the first coroutine it runs outside
asyncio's own code is that instance's code: a method of the instance
(``self`` is it) or a function of the modules that instance was imported
from (recognised by the identity of the module's global namespace, so the
same file's code in the next version is told apart). This finds what a
plugin starts with ``asyncio.create_task(self._loop())`` or from a module
function; a task whose coroutine is entirely someone else's code (a
library's server loop, say) is the plugin's to cancel in its ``stop()``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from types import FrameType
from typing import Any, Final

from mofa_kernel._runtime import is_guard_frame

__all__ = ["cancel_and_wait", "tasks_of", "wait_event"]

_CHAIN_LIMIT: Final = 1000


def _frames(coro: object) -> Iterator[FrameType]:
    """The frames of a coroutine and of what it awaits, outermost first."""
    link: Any = coro
    for _ in range(_CHAIN_LIMIT):
        if link is None:
            return
        frame = (
            getattr(link, "cr_frame", None)
            or getattr(link, "gi_frame", None)
            or getattr(link, "ag_frame", None)
        )
        if frame is not None:
            yield frame
        link = (
            getattr(link, "cr_await", None)
            or getattr(link, "gi_yieldfrom", None)
            or getattr(link, "ag_await", None)
        )


def _owner_frame(task: asyncio.Task[Any]) -> FrameType | None:
    for frame in _frames(task.get_coro()):
        if is_guard_frame(frame):
            continue  # the kernel's wrapper around a plugin's task
        module = frame.f_globals.get("__name__", "")
        if module == "asyncio" or str(module).startswith("asyncio."):
            continue
        return frame
    return None


def tasks_of(instance: object, namespaces: set[int]) -> list[asyncio.Task[Any]]:
    """The unfinished tasks running code of ``instance`` or of the modules in ``namespaces``."""
    current = asyncio.current_task()
    found = []
    for task in asyncio.all_tasks():
        if task is current or task.done():
            continue
        frame = _owner_frame(task)
        if frame is None:
            continue
        if id(frame.f_globals) in namespaces or frame.f_locals.get("self") is instance:
            found.append(task)
    return found


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any]], timeout: float | None) -> list[str]:
    """Cancel ``tasks`` and wait for them; one line for each that failed or would not end."""
    pending = [task for task in tasks if not task.done()]
    if not pending:
        return []
    for task in pending:
        task.cancel()
    done, still = await asyncio.wait(pending, timeout=timeout)
    problems = []
    for task in done:
        if task.cancelled():
            continue
        exc = task.exception()
        if exc is not None:
            problems.append(
                f"background task {task.get_name()} failed: {type(exc).__name__}: {exc}"
            )
    for task in still:
        problems.append(f"background task {task.get_name()} did not end when cancelled")
    return problems


async def wait_event(event: asyncio.Event, seconds: float) -> bool:
    """Wait until ``event`` is set or ``seconds`` have passed; return whether it is set.

    Before Python 3.12, ``asyncio.wait_for`` returns instead of raising when it
    is cancelled just as the event is set, and the cancellation is lost (a
    reloader that would not stop); ``asyncio.wait`` never loses it.
    """
    if event.is_set():
        return True
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({waiter}, timeout=seconds)
    finally:
        waiter.cancel()
    return event.is_set()
