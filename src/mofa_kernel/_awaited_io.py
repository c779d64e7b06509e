"""Telling an event loop that an answer is due on a file descriptor: :func:`expect_io`.

The loop of ``mofa_kernel.dora.new_event_loop`` spends its idle waits
reading the dora node instead of in its selector, so a descriptor that
becomes ready meanwhile is noticed up to a slice of that wait late. That is
cheap for I/O nobody is waiting for, not for an answer the kernel itself
awaits: each step of an isolated plugin's restart (a worker's import, its
load, init and start) waits on a pipe, and a crash until running again took
several times longer there than on an ordinary loop. A part of the kernel
that awaits such an answer registers itself with :func:`expect_io`; while
any of them :attr:`~AwaitsIO.awaiting_io`, that loop waits in its selector.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Protocol

__all__ = ["AwaitsIO", "expect_io", "io_awaited"]


class AwaitsIO(Protocol):
    """Something that, at times, awaits an answer on a descriptor of its loop's selector."""

    @property
    def awaiting_io(self) -> bool:
        """Whether it awaits such an answer now (a reply due, a process about to end)."""


_AWAITING: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, weakref.WeakSet[AwaitsIO]] = (
    weakref.WeakKeyDictionary()
)


def expect_io(loop: asyncio.AbstractEventLoop, waiter: AwaitsIO) -> None:
    """Have ``loop`` ask ``waiter`` whether it awaits I/O, for as long as ``waiter`` lives."""
    waiters = _AWAITING.get(loop)
    if waiters is None:
        waiters = _AWAITING[loop] = weakref.WeakSet()
    waiters.add(waiter)


def io_awaited(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether anything registered with ``loop`` awaits an answer on a descriptor now."""
    waiters = _AWAITING.get(loop)
    return waiters is not None and any(waiter.awaiting_io for waiter in waiters)
