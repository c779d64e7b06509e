"""The serve loop: dora events in, plugin executes, replies out, the asyncio loop never held up.

Events reach the event loop one of two ways. On any loop, a reader thread
makes the blocking ``node.next()`` calls and hands each event over
(``recv_async`` crashed on exit in dora 1.1, a blocking ``next`` in a thread
did not); that costs a thread wake-up per input. On the loop
:func:`mofa_kernel.dora.new_event_loop` makes (the ``dora-node`` command
runs on one), the loop's own thread reads, inside its waits (see ``_loop``).
Either way the node takes at most :data:`READ_AHEAD` events (or twice the
concurrency) that are not answered yet, so that a full node stops reading
and dora's ``queue_policy: backpressure`` holds the senders back instead of
the node buffering without bound. Up to ``concurrency`` worker tasks answer
the inputs; a worker that finds the next input waiting goes on without a
turn of the event loop.

After :meth:`NodeServer.stop` the node finishes what it has taken; an input
it takes meanwhile is not executed but answered on ``error`` (the node is
stopping); once nothing is in flight it takes no more.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import selectors
import sys
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol, final

import attrs

from mofa_kernel import PluginError
from mofa_kernel._awaited_io import io_awaited

from ._loop import BUSY_SLICE, IDLE_SLICE, selector_of
from ._wire import FORMATS, Format, Incoming, decode, encode, error_text, wrap

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


#: How long the reader thread waits in one ``node.next()`` (seconds): how soon it sees
#: that it should stop reading.
READ_WAIT: Final = 0.1

#: The ``error`` reply to an input taken after :meth:`NodeServer.stop`.
STOPPING: Final = "the node is stopping: this input was not executed"

#: From Python 3.12 a task can run its first step at once, in the callback that
#: starts it: a round trip is one turn of the event loop shorter.
_EAGER: Final = sys.version_info >= (3, 12)


def _is_last(event: dict[str, Any] | None) -> bool:
    return event is None or event.get("type") == "STOP"


def _timed_out(event: dict[str, Any] | None) -> bool:
    """A ``next(timeout=...)`` that found nothing: dora 1.1 says so with an ERROR event."""
    return (
        event is not None
        and event.get("type") == "ERROR"
        and "timed out" in str(event.get("error", "")).split("\n", 1)[0]
    )


def _capped(timeout: float | None, cap: float) -> float:
    return cap if timeout is None else min(timeout, cap)


class Node(Protocol):
    """What the serve loop needs of a node: ``dora.Node`` and ``dora.testing.MockNode`` fit.

    A node that also has ``try_recv()`` (both have) is read in the loop's own
    thread on a loop made by :func:`mofa_kernel.dora.new_event_loop`.
    """

    def next(self, timeout: float = ...) -> dict[str, Any] | None: ...

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
        # Taken events on their way to the loop, and whether the loop has been asked to look.
        self._inbox: collections.deque[dict[str, Any] | None] = collections.deque()
        self._woken = False
        # Inputs taken and not yet started; the worker tasks, and how many are working.
        self._waiting: collections.deque[dict[str, Any]] = collections.deque()
        self._workers: set[asyncio.Task[None]] = set()
        self._working = 0
        self._running = 0
        self._reason: Literal["stop", "closed", "stopped"] | None = None
        # stop() was called: inputs taken from now on are refused.
        self._stopping = False
        # No more reads are to start (the stream ended, or stopping with nothing in flight),
        # and whether the reader thread may still be in one.
        self._stop_reading = False
        self._reader_alive = False
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._done: asyncio.Future[None] | None = None
        self._over = False
        self._received = self._answered = self._failed = self._ignored = 0
        self._try_recv: Callable[[], dict[str, Any] | None] | None = None

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
        selector = selector_of(loop)
        reader: threading.Thread | None = None
        # try_recv is there on dora.Node and MockNode (dora 1.1's stubs leave it out).
        self._try_recv = getattr(self._node, "try_recv", None)
        if selector is not None and selector.reader is None and callable(self._try_recv):
            selector.reader = self  # the loop's own thread reads, in its waits
        else:
            selector = None
            reader = threading.Thread(
                target=self._read, name="mofa-kernel-dora-reader", daemon=True
            )
            self._reader_alive = True
            reader.start()
        try:
            await self._done
        finally:
            self._over = self._stop_reading = True
            if selector is not None:
                selector.reader = None
            self._room.release()  # a reader waiting for room sees that it is over
            for worker in self._workers:  # finished by now, unless run() was cancelled
                worker.cancel()
            await asyncio.gather(*self._workers, return_exceptions=True)
        if reader is not None:
            reader.join()  # it has said it is finished: this returns at once
        if self._error is not None:
            raise self._error
        assert self._reason is not None
        return ServeReport(
            self._received, self._answered, self._failed, self._ignored, self._reason
        )

    def stop(self) -> None:
        """Finish the inputs taken, refuse those taken meanwhile, then let :meth:`run` return.

        An input taken after this is not executed: it is answered on
        ``error`` ("the node is stopping") and counted as failed. Once nothing
        is in flight the node takes no more inputs. Call it from the event
        loop's thread (a signal handler installed with
        ``loop.add_signal_handler`` is).
        """
        if self._reason is None:
            self._reason = "stopped"
        self._stopping = True
        self._check_done()

    # -- the reader thread ---------------------------------------------------------------------

    def _read(self) -> None:
        loop = self._loop
        assert loop is not None
        room = self._room
        failure: BaseException | None = None
        # Only next() here: the node's other receiving calls (try_recv, drain) borrow it
        # exclusively and fail while the event loop's thread is sending.
        try:
            while True:
                room.acquire()
                if self._stop_reading:
                    break
                event = self._node.next(timeout=READ_WAIT)
                if _timed_out(event):
                    room.release()
                    continue
                # Handed over through a deque; the loop is woken only when it is not
                # already due to look: under load, one wake-up takes several events.
                self._inbox.append(event)
                if not self._woken:
                    self._woken = True
                    loop.call_soon_threadsafe(self._take_inbox)
                if _is_last(event):
                    break
        except BaseException as exc:  # noqa: BLE001 - handed to run(), which raises it
            failure = exc
        try:
            loop.call_soon_threadsafe(self._reader_finished, failure)
        except RuntimeError:  # the loop is closed: run() was cancelled and nobody waits
            _logger.debug("the dora reader finished after its event loop closed")

    def _reader_finished(self, failure: BaseException | None) -> None:
        self._reader_alive = False
        if failure is not None:
            self._failed_with(failure)
        else:
            self._check_done()

    # -- reading in the loop's own thread (a loop made by new_event_loop) ----------------------

    def select_reading(
        self, selector: selectors.BaseSelector, timeout: float | None
    ) -> list[tuple[selectors.SelectorKey, int]]:
        """The loop's wait, ``selector.select(timeout)``, taking the node's inputs as well.

        The inputs already waiting are taken at once. With nothing to do (no
        input, no call in flight, no answer the kernel awaits on a descriptor,
        such as an isolated plugin's worker restarting) the wait is spent in
        ``node.next()``, after a look at the selector, for at most
        :data:`IDLE_SLICE`; otherwise it is spent in the selector, cut to
        :data:`BUSY_SLICE` so that new inputs are taken meanwhile.
        """
        if self._stop_reading:
            return selector.select(timeout)
        loop = self._loop
        assert loop is not None
        try:
            try:
                if self._take_ready() or timeout == 0:
                    return selector.select(0)
                room = self._room
                if not room.acquire(blocking=False):
                    return selector.select(timeout)  # an answer frees room, and turns the loop
                if self._running or io_awaited(loop):
                    room.release()
                    return selector.select(_capped(timeout, BUSY_SLICE))
                ready = selector.select(0)
                if ready:
                    room.release()
                    return ready
                event = self._node.next(timeout=_capped(timeout, IDLE_SLICE))
                if _timed_out(event):
                    room.release()
                    return []
                self._took(event)
                self._take_ready()
                return []
            finally:
                # Handed to the loop right here: a task this starts runs in this very turn.
                self._take_inbox()
        except Exception as exc:  # noqa: BLE001 - handed to run(), which raises it
            self._stop_reading = True
            loop.call_soon(self._failed_with, exc)
        return []

    def _take_ready(self) -> bool:
        """Take the inputs that wait in the node, while there is room; whether there were any."""
        took = False
        room, try_recv = self._room, self._try_recv
        assert try_recv is not None
        while not self._stop_reading and room.acquire(blocking=False):
            event: dict[str, Any] | None = try_recv()
            if event is None:
                room.release()
                break
            self._took(event)
            took = True
        return took

    def _took(self, event: dict[str, Any] | None) -> None:
        self._inbox.append(event)
        if _is_last(event):
            self._stop_reading = True

    # -- the event loop's side -----------------------------------------------------------------

    def _failed_with(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc
        if self._reason is None:
            self._reason = "closed"
        self._stop_reading = True
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
            if self._over:  # run() was cancelled: nobody will answer it
                _logger.warning("an input arrived after the node stopped serving")
                return
            self._received += 1
            if self._stopping:
                self._refuse(event)
                return
            self._waiting.append(event)
            if self._working < self._concurrency:
                self._start_worker()
            return
        if event is not None:
            self._room.release()
        if kind is None:
            self._reason = self._reason or "closed"
            self._stop_reading = True
        elif kind == "STOP":
            self._reason = self._reason or "stop"
            self._stop_reading = True
        elif kind == "ERROR":
            problem = str(event.get("error")).split("\n")[0]  # type: ignore[union-attr]
            _logger.warning("dora reported an error: %s", problem)
        self._check_done()

    def _refuse(self, event: dict[str, Any]) -> None:
        """Answer an input taken after stop() on ``error``, without executing it."""
        try:
            incoming = decode(event["value"], self._format)
            if incoming.skip:
                self._ignored += 1
            else:
                input_id = str(event.get("id"))
                self._send_error(event, incoming, self._route(input_id), input_id, STOPPING)
        except Exception as exc:  # noqa: BLE001 - handed to run(), which raises it
            self._failed_with(exc)
        finally:
            self._room.release()

    def _start_worker(self) -> None:
        assert self._loop is not None
        self._working += 1
        # Made directly, not through the loop's task factory: the serve loop is not plugin
        # code, and the plugin task guard has nothing to attribute.
        if _EAGER:  # the first input is answered right here, not one turn of the loop later
            worker = asyncio.Task(self._work(), loop=self._loop, eager_start=True)  # type: ignore[call-arg,unused-ignore]
        else:
            worker = asyncio.Task(self._work(), loop=self._loop)
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
        if self._reason is None or self._running or self._waiting or self._inbox:
            return
        # Nothing left to finish: no more reads start. The reader thread's last read may
        # still bring an input (refused); it says when it has returned.
        self._stop_reading = True
        if self._reader_alive:
            return
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

    def _route(self, input_id: str) -> str | None:
        if self._only is not None:
            return self._only
        return input_id if input_id in self._plugins else None

    async def _answer(self, event: dict[str, Any]) -> None:
        input_id = str(event.get("id"))
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
                metadata = dict(event.get("metadata") or {})
                metadata["plugin_id"] = pid
                self._node.send_output(OUT_OUTPUT, encode(output, incoming.binary), metadata)
                self._answered += 1
                return
        self._send_error(event, incoming, pid, input_id, message)

    def _send_error(
        self,
        event: dict[str, Any],
        incoming: Incoming,
        pid: str | None,
        input_id: str,
        message: str,
    ) -> None:
        reply = error_text(pid, input_id, message)
        if incoming.wrapped:
            reply = wrap(reply, pid or input_id, incoming.status)
        metadata = dict(event.get("metadata") or {})
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
