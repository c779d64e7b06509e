"""An event loop whose idle wait is a read of the dora node: no thread hop per input.

A :class:`~mofa_kernel.dora.NodeServer` running on any loop has a thread of
its own wait in ``node.next()`` and hand each input over, which costs a
thread wake-up per input. On the loop :func:`new_event_loop` makes (the
``dora-node`` command's), the loop's own thread reads instead: each turn
takes the inputs already waiting (``try_recv``, which returns at once), and
when the loop has nothing to do it waits in ``node.next()`` rather than in
the selector. The loop keeps running all the time: that wait lasts at most
:data:`IDLE_SLICE` and never past the loop's next timer, and the selector is
looked at before it. The price: while the node is idle, a file descriptor
that becomes ready (a socket, a pipe, another thread's ``call_soon_threadsafe``,
a signal) is noticed up to :data:`IDLE_SLICE` late; while calls are in flight,
or the kernel awaits an answer on a descriptor (an isolated plugin's worker:
see ``mofa_kernel._awaited_io``), the loop waits on its selector as usual and
looks for new inputs every :data:`BUSY_SLICE`.
"""

from __future__ import annotations

import asyncio
import selectors
import weakref
from collections.abc import Mapping
from typing import Any, Final, Protocol

__all__ = [
    "BUSY_SLICE",
    "IDLE_SLICE",
    "DirectReader",
    "NodeSelector",
    "new_event_loop",
    "selector_of",
]

#: The longest the loop's thread waits in ``node.next()`` before it looks at the selector
#: again (seconds): how late an idle node notices other I/O. Each timed-out read costs
#: about 0.1 ms of CPU (dora's timer thread included): 20 a second while idle.
IDLE_SLICE: Final = 0.05
#: With calls in flight the loop waits on the selector, for at most this long before it
#: looks for new inputs again (seconds): how late they are taken while calls wait on I/O.
BUSY_SLICE: Final = 0.01


class DirectReader(Protocol):
    """What reads the node from inside the selector (a running NodeServer)."""

    def select_reading(
        self, selector: selectors.BaseSelector, timeout: float | None
    ) -> list[tuple[selectors.SelectorKey, int]]: ...


class NodeSelector(selectors.BaseSelector):
    """The platform's selector, with a :class:`DirectReader` taking the loop's waits while one
    is attached."""

    def __init__(self) -> None:
        self._inner = selectors.DefaultSelector()
        #: The server reading the node in this loop's waits, while it serves.
        self.reader: DirectReader | None = None

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        reader = self.reader
        if reader is None:
            return self._inner.select(timeout)
        return reader.select_reading(self._inner, timeout)

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._inner.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.modify(fileobj, events, data)

    def get_key(self, fileobj: Any) -> selectors.SelectorKey:
        return self._inner.get_key(fileobj)

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._inner.get_map()

    def close(self) -> None:
        self._inner.close()


_SELECTORS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, NodeSelector] = (
    weakref.WeakKeyDictionary()
)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """An event loop on which :func:`serve` reads the node in the loop's own thread.

    Run the host's program on it (``asyncio.Runner(loop_factory=new_event_loop)``)
    to spare a thread wake-up per input, as ``mofa-kernel dora-node`` does;
    otherwise it is an ordinary selector event loop. The command also sets
    ``RUST_LIB_BACKTRACE=0`` (unless set): under ``dora run`` each timed-out
    read of the idle node would otherwise capture a Rust backtrace.
    """
    selector = NodeSelector()
    loop = asyncio.SelectorEventLoop(selector)
    _SELECTORS[loop] = selector
    return loop


def selector_of(loop: asyncio.AbstractEventLoop) -> NodeSelector | None:
    """The :class:`NodeSelector` of a loop made by :func:`new_event_loop`, else ``None``."""
    return _SELECTORS.get(loop)
