"""The kernel's event stream: listeners, plugin observers and bounded subscriptions.

Emitting never blocks and never fails. Listeners and ``on_plugin_event``
observers are called in turn; one that raises is reported and the others
still run. Subscriptions (:meth:`EventBus.subscribe`) are bounded queues: when
a slow consumer's queue is full the oldest event is dropped and counted, so
memory stays flat and every loss is visible in :attr:`Subscription.dropped`
and :attr:`EventBus.dropped`.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
from collections.abc import AsyncIterator, Callable
from typing import Any

from ._events import KernelEvent

__all__ = ["EventBus", "Subscription"]

Listener = Callable[[KernelEvent], Any]
#: Called with (observer id, event, exception) when a listener or observer raises.
FailureHandler = Callable[[str, KernelEvent, BaseException], None]


class Subscription:
    """A bounded queue of events for one consumer; iterate it with ``async for``."""

    __slots__ = ("_buffer", "_bus", "_closed", "_waiter", "dropped", "maxsize")

    def __init__(self, bus: EventBus, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("a subscription needs room for at least one event")
        self._bus = bus
        self._buffer: collections.deque[KernelEvent] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self.maxsize = maxsize
        #: Events this subscription lost because its consumer fell behind.
        self.dropped = 0

    def _put(self, event: KernelEvent) -> None:
        if len(self._buffer) >= self.maxsize:
            self._buffer.popleft()
            self.dropped += 1
            self._bus.dropped += 1
        self._buffer.append(event)
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def close(self) -> None:
        """End the iteration once the buffered events are consumed."""
        self._closed = True
        self._bus._subscriptions.discard(self)
        self._wake()

    def __aiter__(self) -> AsyncIterator[KernelEvent]:
        return self

    async def __anext__(self) -> KernelEvent:
        while not self._buffer:
            if self._closed:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._buffer.popleft()

    def get_nowait(self) -> KernelEvent | None:
        """The next buffered event, or ``None``."""
        return self._buffer.popleft() if self._buffer else None

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class EventBus:
    """Fan-out of kernel events to listeners, observers and subscriptions."""

    __slots__ = (
        "_listeners",
        "_observers",
        "_on_failure",
        "_reporting",
        "_subscriptions",
        "_tasks",
        "dropped",
        "emitted",
    )

    def __init__(self, on_failure: FailureHandler) -> None:
        self._listeners: list[tuple[str, Listener]] = []
        self._observers: list[tuple[str, Listener]] = []
        self._subscriptions: set[Subscription] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._on_failure = on_failure
        self._reporting: set[str] = set()
        #: Events emitted since the bus was made.
        self.emitted = 0
        #: Events dropped by full subscriptions, all subscriptions together.
        self.dropped = 0

    def add_listener(self, listener: Listener, *, name: str = "listener") -> None:
        self._listeners.append((name, listener))

    def remove_listener(self, listener: Listener) -> None:
        self._listeners = [(n, fn) for n, fn in self._listeners if fn is not listener]

    def set_observers(self, observers: list[tuple[str, Listener]]) -> None:
        """Replace the ``on_plugin_event`` implementations, as (plugin id, function) pairs."""
        self._observers = observers

    def subscribe(self, maxsize: int = 1000) -> Subscription:
        subscription = Subscription(self, maxsize)
        self._subscriptions.add(subscription)
        return subscription

    def emit(self, event: KernelEvent) -> None:
        self.emitted += 1
        for subscription in self._subscriptions:
            subscription._put(event)
        if self._listeners:
            self._deliver(self._listeners, event)
        if self._observers:
            self._deliver(self._observers, event)

    def _deliver(self, targets: list[tuple[str, Listener]], event: KernelEvent) -> None:
        for name, function in targets:
            if name in self._reporting:
                continue  # never feed an observer the report of its own failure
            try:
                result = function(event)
            except Exception as exc:  # noqa: BLE001 - isolated and reported, never silent
                self._report(name, event, exc)
                continue
            if inspect.iscoroutine(result):
                self._spawn(name, event, result)

    def _spawn(self, name: str, event: KernelEvent, coro: Any) -> None:
        try:
            task = asyncio.get_running_loop().create_task(coro)
        except RuntimeError:
            coro.close()
            self._report(name, event, RuntimeError("async observer called outside an event loop"))
            return
        self._tasks.add(task)
        task.add_done_callback(lambda t: self._finished(name, event, t))

    def _finished(self, name: str, event: KernelEvent, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            assert exc is not None
            self._report(name, event, exc)

    def _report(self, name: str, event: KernelEvent, exc: BaseException) -> None:
        self._reporting.add(name)
        try:
            self._on_failure(name, event, exc)
        finally:
            self._reporting.discard(name)

    async def drain(self) -> None:
        """Wait for the async observers still running."""
        while self._tasks:
            under_way = list(self._tasks)
            await asyncio.gather(*under_way, return_exceptions=True)
            self._tasks.difference_update(under_way)  # done, whether or not their callbacks ran
