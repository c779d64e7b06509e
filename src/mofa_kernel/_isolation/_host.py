"""The host's end of one worker process: :class:`WorkerProcess`, started from a :class:`WorkerSpec`.

The worker runs in a session (and so a process group) of its own (see
``_spawn``). Frames travel on two dedicated pipes, so the plugin keeps the
worker's stdout and stderr for its own prints. The host notices a worker's
end by awaiting it, never by polling; then it fails the calls in flight, ends what the worker
left behind in its process group, and tells its exit listeners.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import signal
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from mofa_kernel._awaited_io import expect_io
from mofa_kernel._errors import (
    PluginError,
    PluginExecutionError,
    PluginLoadError,
    PluginTimeoutError,
)

from ._exit import WorkerExit
from ._frames import (
    CANCEL,
    CTX,
    EVENT,
    EXIT,
    FAIL,
    MEMORY_EXIT,
    META,
    OK,
    REPLY,
    STATE,
    FrameDecoder,
)
from ._frames import encode as _encode
from ._frames import encode_call as _encode_call
from ._spawn import (
    Launched,
    Prepared,
    WorkerSpec,
    end_group,
    import_failure,
    launch,
    spares,
    spec_frame,
    wait,
)

__all__ = ["ContextHandler", "RemoteFault", "WorkerProcess", "WorkerSpec"]

#: Answers a worker's context request ``(op, args)`` with a JSON value.
ContextHandler = Callable[[str, list[Any]], Awaitable[Any]]
#: How long a call waits for its answer before it yields to the event loop (seconds).
BRIEF_WAIT: Final = 0.0005
#: The first part of that wait, spent looking at the pipe and giving the CPU away in between
#: rather than sleeping (seconds): see :meth:`WorkerProcess._wait_briefly`.
POLL_WAIT: Final = 0.0001
#: select() takes descriptors below FD_SETSIZE only.
_SELECT_LIMIT: Final = 1024
#: A cancelled call counts as a deadline overrun when it ran at least this share of the deadline.
_DEADLINE_SHARE: Final = 0.9
_monotonic = time.monotonic


def _poll(fd: int, seconds: float) -> bytes | None:
    """Read what the non-blocking ``fd`` has, looking again for ``seconds`` while it has
    nothing and yielding the CPU between looks; ``None``: still nothing."""
    give_way = os.sched_yield
    until = _monotonic() + seconds
    while True:
        try:
            return os.read(fd, 1 << 16)
        except BlockingIOError:
            if _monotonic() >= until:
                return None
            give_way()


class RemoteFault(PluginError):
    """Base of the exceptions that stand, in the host, for one a plugin raised in its worker.

    Each raised type is a subclass named after the plugin's exception
    (``ValueError``), so messages read as they would for an inline plugin.
    """


_FAULT_TYPES: dict[str, type[RemoteFault]] = {}


def _fault_error(plugin_id: str, hook: str, fault: Mapping[str, Any]) -> PluginError:
    name = str(fault.get("type") or "Exception")
    message = str(fault.get("message") or "")
    where = fault.get("where")
    if fault.get("kind") == "rejected":  # the plugin turned this input down; it stays running
        return PluginExecutionError(message)
    text = (f"{message} ({where})" if message else f"({where})") if where else message
    kind = _FAULT_TYPES.get(name)
    if kind is None:
        kind = _FAULT_TYPES[name] = type(name, (RemoteFault,), {"__module__": "builtins"})
    return kind(text, plugin_id=plugin_id, hook=hook)


class _Reader(asyncio.Protocol):
    def __init__(self, worker: WorkerProcess) -> None:
        self.worker = worker

    def data_received(self, data: bytes) -> None:
        self.worker._received(data)

    def eof_received(self) -> bool:
        return False


class WorkerProcess:
    """One running worker: calls into its plugin, its context requests, its end."""

    def __init__(self, spec: WorkerSpec, handler: ContextHandler) -> None:
        self.spec = spec
        self.handler = handler
        #: The worker's process id, which is also its process group's.
        self.pid: int | None = None
        #: The worker's exit status once it has ended (negative: the signal's number).
        self.returncode: int | None = None
        self._reaped = False
        #: How the worker ended unasked, once it has; ``None`` while it runs or after ``close``.
        self.exit: WorkerExit | None = None
        #: Set once the worker and everything in its process group are gone.
        self.ended = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._decoder = FrameDecoder()
        self._pending: dict[int, tuple[asyncio.Future[Any], str]] = {}
        self._next = 0
        self._writer: asyncio.WriteTransport | None = None
        self._reader: asyncio.ReadTransport | None = None
        #: The plugin's metadata and hooks, awaited by :meth:`start` (``None`` when attached).
        self._meta: asyncio.Future[list[Any]] | None = None
        self._ending: WorkerExit | None = None
        self._closing = False
        self._killer: asyncio.TimerHandle | None = None
        self._listeners: list[Callable[[WorkerExit], object]] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._reads = -1
        self._misses = 0
        self._skip_waits = 0
        expect_io(self._loop, self)

    @property
    def awaiting_io(self) -> bool:
        """Whether an answer of the worker is due: a call's, its plugin's metadata, or its end
        once it is being ended (see ``mofa_kernel._awaited_io``)."""
        if self.pid is None:  # not started, or its start failed
            return False
        if self._pending or (self._meta is not None and not self._meta.done()):
            return True
        return (self._closing or self._ending is not None) and not self.ended.is_set()

    @property
    def alive(self) -> bool:
        return self.pid is not None and not self._reaped

    @property
    def answering(self) -> bool:
        """Whether calls can still reach the worker (it runs, and nobody is ending it)."""
        return self.alive and self.exit is None and not self._closing and self._ending is None

    def on_exit(self, listener: Callable[[WorkerExit], object]) -> None:
        """Call ``listener(exit)`` when the worker ends without the host asking it to."""
        self._listeners.append(listener)

    # -- start ------------------------------------------------------------------------------

    async def start(self) -> tuple[dict[str, Any], list[str]]:
        """Start the worker and import the plugin there: its metadata (serde JSON) and hooks."""
        meta = self._meta = self._loop.create_future()
        launched = spares.take(self.spec) or launch(self.spec)
        await self._connect(launched)
        spares.replenish(self.spec)
        writer = self._writer
        assert writer is not None
        writer.write(spec_frame(self.spec))
        try:
            metadata, hooks = await meta
        except BaseException:
            await self.close()
            raise
        return metadata, hooks

    async def attach(self, prepared: Prepared) -> None:
        """Serve through a worker that :func:`~._spawn.prepare` started without a loop."""
        await self._connect(prepared.launched)

    async def _connect(self, launched: Launched) -> None:
        self.pid = launched.pid
        self._reads = launched.reads
        loop = self._loop
        try:
            self._reader, _ = await loop.connect_read_pipe(
                lambda: _Reader(self), os.fdopen(launched.reads, "rb", buffering=0)
            )
            self._writer, _ = await loop.connect_write_pipe(
                asyncio.BaseProtocol, os.fdopen(launched.writes, "wb", buffering=0)
            )
        finally:
            self._spawn(self._watch())

    # -- calls ------------------------------------------------------------------------------

    async def call(self, method: str, args: list[Any], deadline: float | None = None) -> Any:
        """Run the plugin's ``method(*args)`` in the worker and return its JSON answer.

        A cancelled call that ran for (nearly) ``deadline`` seconds ends the
        worker, the only way to stop a plugin that never yields; any other
        cancellation asks the worker to cancel the call.
        """
        if self.exit is not None or self._closing or self._ending is not None:
            raise self._gone_error(method)
        self._next += 1
        call_id = self._next
        began = _monotonic()
        writer = self._writer
        if writer is not None and not writer.is_closing():
            writer.write(_encode_call(call_id, method, args))
        early: list[list[Any]] = []
        if self._skip_waits:
            self._skip_waits -= 1
        elif not self._pending:
            early = self._wait_briefly()
            if len(early) == 1 and early[0][1] == call_id:  # answered: no turn of the loop
                kind = early[0][0]
                if kind == OK:
                    return early[0][2]
                if kind == FAIL:
                    raise _fault_error(self.spec.plugin_id, method, early[0][2])
        future = self._loop.create_future()
        self._pending[call_id] = (future, method)
        if early:
            self._dispatch(early)
            if future.done():
                return future.result()
        try:
            return await future
        except asyncio.CancelledError:
            if self._pending.pop(call_id, None) is not None:
                self._abandon(call_id, method, _monotonic() - began, deadline)
            raise

    def _wait_briefly(self) -> list[list[Any]]:
        """Wait up to :data:`BRIEF_WAIT` for the worker's next messages, blocking the loop.

        A round trip through the event loop costs several times the process
        hop itself, and most plugin calls answer within microseconds. For the
        first :data:`POLL_WAIT` the host looks at the pipe and yields its CPU
        in between (``sched_yield``) instead of sleeping: a CPU that went idle
        must be woken for the answer, and on a virtual machine that wake-up,
        with the caches it leaves cold, cost more than the hop itself (the
        round trip across two CPUs took twice as long). Yielding lets a worker
        that shares the host's CPU answer at once. After a wait that came back
        empty, the next ones are skipped (1, 2, 4, ... up to 1024 calls), so a
        slow plugin costs the loop and the CPU almost nothing.
        """
        fd = self._reads
        if fd < 0:
            return []
        data = _poll(fd, POLL_WAIT)
        rest = BRIEF_WAIT - POLL_WAIT
        if data is None and fd < _SELECT_LIMIT and select.select((fd,), (), (), rest)[0]:
            data = _poll(fd, 0.0)
        messages = self._decoder.feed(data) if data else []
        if messages:
            self._misses = 0
            return messages
        self._misses = min(self._misses + 1, 10)
        self._skip_waits = 1 << (self._misses - 1)
        return []

    def _abandon(self, call_id: int, method: str, ran: float, deadline: float | None) -> None:
        if deadline is not None and ran >= deadline * _DEADLINE_SHARE:
            self.terminate(WorkerExit("deadline", deadline=deadline, hook=method))
        elif self.alive:
            self._write([CANCEL, call_id])

    def send_state(self, state: object) -> None:
        """Tell the plugin its state (serde JSON), which its own ``health_check`` may read."""
        if self.alive and not self._closing:
            self._write([STATE, state])

    def send_event(self, event: object) -> None:
        """Hand a kernel event (serde JSON) to the plugin's ``on_plugin_event`` hook."""
        if self.alive and not self._closing:
            self._write([EVENT, event])

    def _write(self, message: list[Any]) -> None:
        writer = self._writer
        if writer is not None and not writer.is_closing():
            writer.write(_encode(message))

    def _received(self, data: bytes) -> None:
        self._dispatch(self._decoder.feed(data))

    def _dispatch(self, messages: list[list[Any]]) -> None:
        for message in messages:
            kind = message[0]
            if kind in (OK, FAIL):
                entry = self._pending.pop(message[1], None)
                if entry is None:
                    meta = self._meta
                    if message[1] is None and meta is not None and not meta.done():
                        meta.set_exception(self._import_error(message[2]))  # import failed
                    continue
                future, method = entry
                if future.done():
                    continue
                if kind == OK:
                    future.set_result(message[2])
                else:
                    future.set_exception(_fault_error(self.spec.plugin_id, method, message[2]))
            elif kind == CTX:
                self._spawn(self._serve_context(message[1], message[2], message[3]))
            elif kind == META and self._meta is not None and not self._meta.done():
                self._meta.set_result([message[1], message[2]])

    async def _serve_context(self, request_id: int, op: str, args: list[Any]) -> None:
        try:
            value = await self.handler(op, args)
            frame = _encode([REPLY, request_id, True, value])
        except (Exception, asyncio.CancelledError) as exc:  # noqa: BLE001 - handed to the plugin
            frame = _encode([REPLY, request_id, False, f"{type(exc).__name__}: {exc}"])
        writer = self._writer
        if writer is not None and not writer.is_closing():
            writer.write(frame)

    def _import_error(self, fault: Mapping[str, Any]) -> PluginLoadError:
        return import_failure(self.spec, fault)

    def _gone_error(self, method: str) -> PluginError:
        ending = self.exit or self._ending
        pid = self.spec.plugin_id
        if ending is None:
            return PluginExecutionError(
                f"plugin {pid!r}: its worker was shut down", plugin_id=pid, hook=method
            )
        kind = PluginTimeoutError if ending.cause == "deadline" else PluginExecutionError
        return kind(f"plugin {pid!r}: {ending}", plugin_id=pid, hook=method)

    # -- the end ----------------------------------------------------------------------------

    def terminate(self, reason: WorkerExit) -> None:
        """End the worker's process group: SIGTERM now, SIGKILL after the grace period."""
        if self._ending is None:
            self._ending = reason
        self._signal(signal.SIGTERM)
        if self._killer is None:
            self._killer = self._loop.call_later(self.spec.grace, self._signal, signal.SIGKILL)

    def _signal(self, number: int) -> None:
        pid = self.pid
        if pid is None or self._reaped:  # a reaped pid may belong to someone else by now
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, number)

    async def close(self) -> None:
        """End the worker as the host's own decision: no exit listener hears of it.

        The worker is asked to leave; past the grace period it is ended like
        an overrunning one. Returns once nothing of its process group is left.
        """
        self._closing = True
        if self.alive:
            self._write([EXIT])
            if self._writer is not None:
                self._writer.close()
            try:
                await asyncio.wait_for(self.ended.wait(), self.spec.grace)
            except asyncio.TimeoutError:  # not yet the builtin TimeoutError on 3.10
                self.terminate(WorkerExit("exited"))
        await self.ended.wait()

    async def _watch(self) -> None:
        pid = self.pid
        assert pid is not None
        self.returncode = returncode = await wait(pid)
        self._reaped = True
        if self._killer is not None:
            self._killer.cancel()
        if self._ending is not None and (self._ending.cause != "exited" or not self._closing):
            ended = self._ending
        elif returncode is None:
            ended = WorkerExit("exited")
        else:
            ended = WorkerExit.from_status(returncode, self.spec.memory_limit, MEMORY_EXIT)
        self._ending = ended
        if not self._closing:
            self.exit = ended
        pending, self._pending = self._pending, {}
        for future, method in pending.values():
            if not future.done():
                future.set_exception(self._gone_error(method))
        if self._meta is not None and not self._meta.done():
            self._meta.set_exception(
                PluginLoadError(
                    f"worker of plugin {self.spec.plugin_id!r} ended before it reported the "
                    f"plugin: {ended}",
                    plugin_id=self.spec.plugin_id,
                )
            )
        for transport in (self._writer, self._reader):
            if transport is not None:
                transport.close()
        await end_group(pid)
        self.ended.set()
        if self.exit is not None:
            for listener in self._listeners:
                listener(self.exit)

    def _spawn(self, coro: Any) -> None:
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
