"""The serve loop: dora events in, plugin executes, replies out, the asyncio loop never held up.

A reader thread makes the blocking ``node.next()`` calls and hands each event
to the running event loop (``recv_async`` crashed on exit in dora 1.1, a
blocking ``next`` in a thread did not). The thread takes at most
:data:`READ_AHEAD` events (or twice the concurrency) that are not answered
yet, so that a full node stops reading and dora's ``queue_policy:
backpressure`` holds the senders back instead of the node buffering without
bound. Up to ``concurrency`` worker tasks answer the inputs; a worker that
finds the next input waiting goes on without a turn of the event loop.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import sys
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol, final

import attrs

from mofa_kernel import PluginError

from ._wire import FORMATS, Format, decode, encode, error_text, wrap

if TYPE_CHECKING:
    from mofa_kernel import PluginManager

__all__ = ["ERROR_OUTPUT", "OUT_OUTPUT", "Node", "NodeServer", "ServeReport", "serve"]

#: The output that carries results.
OUT_OUTPUT: Final = "out"
#: The output that carries failures, as JSON objects with ``plugin_id`` and ``error``.
ERROR_OUTPUT: Final = "error"

_logger = logging.getLogger("mofa_kernel.dora")

#: How many inputs the reader takes ahead of those answered, at least (twice the
#: concurrency when that is more): enough that the workers always find the next one
#: waiting under load, few enough that a busy node holds its senders back through
#: dora's backpressure.
READ_AHEAD: Final = 16


#: From Python 3.12 a task can run its first step at once, in the callback that
#: starts it: a round trip is one turn of the event loop shorter.
_EAGER: Final = sys.version_info >= (3, 12)


def _is_last(event: dict[str, Any] | None) -> bool:
    return event is None or event.get("type") == "STOP"


class Node(Protocol):
    """What the serve loop needs of a node: ``dora.Node`` and ``dora.testing.MockNode`` fit."""

    def next(self) -> dict[str, Any] | None: ...

    def send_output(self, output_id: str, data: Any, metadata: dict[str, Any]) -> None: ...


@attrs.frozen
class ServeReport:
    """What a finished serve loop did."""

    #: INPUT events taken from the node.
    received: int
    #: Replies sent on ``out``.
    answered: int
    #: Replies sent on ``error``.
    failed: int
    #: Inputs with nothing to answer: MoFA envelopes whose ``node_results`` is null.
    ignored: int
    #: Why it ended: a ``STOP`` event, the event stream closing, or :meth:`NodeServer.stop`.
    reason: Literal["stop", "closed", "stopped"]


@final
class NodeServer:
    """Serves plugins of a running manager on a dora node until the dataflow stops.

    With one plugin, every input goes to it; with several, an input goes to
    the plugin whose id is the input's id. At most ``concurrency`` executes run
    at once; with 1 (the default) inputs are executed in the order they came.
    """

    def __init__(
        self,
        node: Node,
        manager: PluginManager,
        *,
        plugins: Sequence[str],
        format: Format = "auto",
        concurrency: int = 1,
    ) -> None:
        if not plugins:
            raise ValueError("name at least one plugin to serve")
        if format not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {format!r}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {concurrency}")
        self._node = node
        self._manager = manager
        self._plugins = tuple(dict.fromkeys(plugins))
        self._only = self._plugins[0] if len(self._plugins) == 1 else None
        self._format: Format = format
        self._concurrency = concurrency
        # Events taken from the node and not yet answered: the reader waits for room.
        self._room = threading.Semaphore(max(READ_AHEAD, 2 * concurrency))
        self._closing = False
        # Events from the reader thread, and whether the loop has been asked to take them.
        self._inbox: collections.deque[dict[str, Any] | None] = collections.deque()
        self._woken = False
        # Inputs taken and not yet started; the worker tasks, and how many are working.
        self._waiting: collections.deque[dict[str, Any]] = collections.deque()
        self._workers: set[asyncio.Task[None]] = set()
        self._working = 0
        self._running = 0
        self._reason: Literal["stop", "closed", "stopped"] | None = None
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._done: asyncio.Future[None] | None = None
        self._over = False
        self._received = self._answered = self._failed = self._ignored = 0

    async def run(self) -> ServeReport:
        """Serve until ``STOP``, the end of the event stream, or :meth:`stop`; then return.

        Every input taken from the node is answered (or, for a null MoFA
        result, counted as ignored) before this returns. The manager is left
        running: shutting it down is the caller's.
        """
        if self._loop is not None:
            raise RuntimeError("a NodeServer runs once")
        self._loop = loop = asyncio.get_running_loop()
        self._done = loop.create_future()
        reader = threading.Thread(target=self._read, name="mofa-kernel-dora-reader", daemon=True)
        reader.start()
        try:
            while True:
                await self._done
                if not (self._running or self._waiting):
                    break
                # An event the reader had already taken arrived after stop(): answer it too.
                self._done = loop.create_future()
        finally:
            self._closing = True
            self._over = True
            self._room.release()  # a reader waiting for room sees that it is closing
            for worker in self._workers:  # finished by now, unless run() was cancelled
                worker.cancel()
            await asyncio.gather(*self._workers, return_exceptions=True)
        if self._reason != "stopped":
            # After STOP or the end of the stream the reader has returned already.
            reader.join()
        # Stopped from outside, the reader may be blocked in node.next(): it is a daemon
        # thread and whatever it receives from now on is left in the node's queue.
        if self._error is not None:
            raise self._error
        assert self._reason is not None
        return ServeReport(
            self._received, self._answered, self._failed, self._ignored, self._reason
        )

    def stop(self) -> None:
        """Take no more inputs, answer those taken, then let :meth:`run` return.

        Call it from the event loop's thread (a signal handler installed with
        ``loop.add_signal_handler`` is).
        """
        if self._reason is None:
            self._reason = "stopped"
        self._closing = True
        self._check_done()

    # -- the reader thread ---------------------------------------------------------------------

    def _read(self) -> None:
        loop = self._loop
        assert loop is not None
        room = self._room
        # Only next() here: the node's other receiving calls (try_recv, drain) borrow it
        # exclusively and fail while the event loop's thread is sending.
        try:
            while True:
                room.acquire()
                if self._closing:
                    return
                event = self._node.next()
                # Handed over through a deque; the loop is woken only when it is not
                # already due to look: under load, one wake-up takes several events.
                self._inbox.append(event)
                if not self._woken:
                    self._woken = True
                    try:
                        loop.call_soon_threadsafe(self._take_inbox)
                    except RuntimeError:
                        # The loop is closed: run() has returned after stop(). The event
                        # stays unanswered; its sender sees the node leave the dataflow.
                        _logger.warning("an event arrived after the node stopped serving")
                        return
                if _is_last(event):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to run(), which raises it
            loop.call_soon_threadsafe(self._failed_with, exc)

    # -- the event loop's side -----------------------------------------------------------------

    def _failed_with(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc
        if self._reason is None:
            self._reason = "closed"
        self._check_done()

    def _take_inbox(self) -> None:
        # Cleared before taking: an event the reader adds from now on either is taken
        # below or finds the flag down and wakes the loop again.
        self._woken = False
        inbox = self._inbox
        while inbox:
            self._on_event(inbox.popleft())

    def _on_event(self, event: dict[str, Any] | None) -> None:
        kind = None if event is None else event.get("type")
        if kind == "INPUT":
            assert event is not None
            if self._over:  # run() has returned: nobody will answer it
                _logger.warning("an input arrived after the node stopped serving")
                return
            self._received += 1
            self._waiting.append(event)
            if self._working < self._concurrency:
                self._start_worker()
            return
        if event is not None:
            self._room.release()
        if kind is None:
            self._reason = self._reason or "closed"
        elif kind == "STOP":
            self._reason = self._reason or "stop"
        elif kind == "ERROR":
            problem = str(event.get("error")).split("\n")[0]  # type: ignore[union-attr]
            _logger.warning("dora reported an error: %s", problem)
        self._check_done()

    def _start_worker(self) -> None:
        assert self._loop is not None
        self._working += 1
        if _EAGER:  # the first input is answered right here, not one turn of the loop later
            worker = asyncio.Task(self._work(), loop=self._loop, eager_start=True)  # type: ignore[call-arg,unused-ignore]
        else:
            worker = self._loop.create_task(self._work())
        if not worker.done():
            self._workers.add(worker)
            worker.add_done_callback(self._workers.discard)

    async def _work(self) -> None:
        """One of at most ``concurrency`` workers: answers inputs while any are waiting.

        With the next input waiting it goes on without a turn of the event loop.
        """
        waiting = self._waiting
        while waiting:
            event = waiting.popleft()
            self._running += 1
            try:
                await self._answer(event)
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # noqa: BLE001 - handed to run(), which raises it
                self._failed_with(exc)
            finally:
                self._running -= 1
                self._room.release()
        self._working -= 1  # nothing awaited since the last look at ``waiting``
        self._check_done()

    def _check_done(self) -> None:
        if self._reason is None or self._running or self._waiting:
            return
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

    def _route(self, input_id: str) -> str | None:
        if self._only is not None:
            return self._only
        return input_id if input_id in self._plugins else None

    async def _answer(self, event: dict[str, Any]) -> None:
        input_id = str(event.get("id"))
        metadata = dict(event.get("metadata") or {})
        incoming = decode(event["value"], self._format)
        if incoming.skip:
            self._ignored += 1
            return
        pid = self._route(input_id)
        if pid is None:
            served = ", ".join(self._plugins)
            message = f"no plugin {input_id!r} is served by this node (it serves {served})"
        elif incoming.problem is not None:
            message = incoming.problem
        else:
            assert incoming.text is not None
            try:
                output = await self._manager.execute(pid, incoming.text)
            except PluginError as exc:
                message = str(exc)
            else:
                if incoming.wrapped:
                    output = wrap(output, pid, incoming.status)
                metadata["plugin_id"] = pid
                self._node.send_output(OUT_OUTPUT, encode(output, incoming.binary), metadata)
                self._answered += 1
                return
        reply = error_text(pid, input_id, message)
        if incoming.wrapped:
            reply = wrap(reply, pid or input_id, incoming.status)
        if pid is not None:
            metadata["plugin_id"] = pid
        self._node.send_output(ERROR_OUTPUT, encode(reply, incoming.binary), metadata)
        self._failed += 1


async def serve(
    node: Node,
    manager: PluginManager,
    *,
    plugins: Sequence[str],
    format: Format = "auto",
    concurrency: int = 1,
) -> ServeReport:
    """Serve the running plugins ``plugins`` of ``manager`` on ``node`` until the dataflow stops.

    Results go out on ``out``, failures on ``error``, each with the input's
    metadata plus ``plugin_id``. The plugins must be running already (see
    :func:`start_plugins`); the manager is left running.
    """
    server = NodeServer(node, manager, plugins=plugins, format=format, concurrency=concurrency)
    return await server.run()
