"""The worker process of an isolated plugin: ``python -m mofa_kernel._isolation._worker R W``.

``R`` and ``W`` are the pipe descriptors the host passed (``pass_fds``): the
worker reads frames from ``R`` and writes frames to ``W``; its stdin, stdout
and stderr stay the plugin's own. The first frame names the plugin (its entry
point, distribution and memory cap); the worker applies the cap, imports the
entry point itself, adapts it as the host would (class-style or hook module),
and answers with the plugin's metadata. Then it serves calls until the host
says ``exit`` or goes away.

Each call runs as a task of the worker's event loop, started eagerly where
Python allows (3.12+), so that a call that never suspends is answered from
the read callback without a second trip through the loop. A fault the worker
survives is returned as the failure of that call; a ``MemoryError`` that
escapes the worker's own machinery ends it with :data:`MEMORY_EXIT`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, NoReturn

from . import _frames
from ._frames import (
    CALL,
    CANCEL,
    CTX,
    EVENT,
    EXIT,
    FAIL,
    MEMORY_EXIT,
    META,
    OK,
    REPLY,
    SPEC,
    FrameDecoder,
    encode,
)

if TYPE_CHECKING:
    from mofa_kernel._context import PluginContext
    from mofa_kernel._plugin import AgentPlugin

__all__ = ["main"]

#: What a call may raise and still only fail that call: everything but the loop's own exit.
_FAULTS: Final = (Exception, SystemExit, KeyboardInterrupt, asyncio.CancelledError)
_METHODS: Final = frozenset(
    {
        "load",
        "init_plugin",
        "start",
        "pause",
        "resume",
        "stop",
        "unload",
        "execute",
        "health_check",
        "stats",
        "save_state",
        "restore_state",
        "refresh",
    }
)
_EAGER: Final = sys.version_info >= (3, 12)


def _fault(exc: BaseException, kind: str = "raised") -> dict[str, Any]:
    """How a plugin's exception crosses the wire: its type, message and the plugin's line."""
    where = None
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if not frame.filename.startswith(_KERNEL_DIR) and "asyncio" not in frame.filename:
            where = f"{os.path.basename(frame.filename)}:{frame.lineno}"
            break
    from mofa_kernel._errors import PluginExecutionError

    rejected = isinstance(exc, PluginExecutionError) and exc.plugin_id is None
    return {
        "type": type(exc).__name__,
        "message": str(exc),
        "where": where,
        "kind": "rejected" if rejected else kind,
    }


_KERNEL_DIR: Final = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class _Worker:
    """One plugin served over one pair of pipes."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.read_fd = read_fd
        self.write_fd = write_fd
        self.decoder = FrameDecoder()
        self.loop = asyncio.new_event_loop()
        self.plugin: AgentPlugin | None = None
        self.observer: Callable[..., Any] | None = None
        self.requests: dict[int, asyncio.Future[Any]] = {}
        self.next_request = 0
        self.tasks: set[asyncio.Task[Any]] = set()
        #: Calls that suspended, by call id, so that a ``cancel`` can reach them.
        self.running: dict[int, asyncio.Task[Any]] = {}
        self.finished = self.loop.create_future()
        #: Whether the host said goodbye (``exit``) rather than vanishing (end of file).
        self.dismissed = False

    # -- I/O --------------------------------------------------------------------------------

    def send(self, message: list[Any]) -> None:
        try:
            frame = encode(message)
        except (TypeError, ValueError) as exc:
            if message[0] != OK:
                raise
            fault = {"type": "TypeError", "message": str(exc), "where": None, "kind": "wire"}
            frame = encode([FAIL, message[1], fault])
        view = memoryview(frame)
        while view:
            written = os.write(self.write_fd, view)
            view = view[written:]

    def readable(self) -> None:
        try:
            data = os.read(self.read_fd, 1 << 16)
        except OSError:
            data = b""
        if not data:
            self.finish()
            return
        for message in self.decoder.feed(data):
            self.dispatch(message)

    def finish(self) -> None:
        if not self.finished.done():
            self.finished.set_result(None)

    def dispatch(self, message: list[Any]) -> None:
        kind = message[0]
        if kind == CALL:
            self.call(message[1], message[2], message[3])
        elif kind == REPLY:
            future = self.requests.pop(message[1], None)
            if future is not None and not future.done():
                if message[2]:
                    future.set_result(message[3])
                else:
                    future.set_exception(_host_error(message[3]))
        elif kind == CANCEL:
            running = self.running.get(message[1])
            if running is not None:
                running.cancel()
        elif kind == EVENT:
            self.observe(message[1])
        elif kind == EXIT:
            self.dismissed = True
            self.finish()
        else:
            raise _frames.FrameError(f"unexpected message {kind!r}")

    # -- the plugin -------------------------------------------------------------------------

    def import_plugin(self, spec: dict[str, Any]) -> None:
        """Import the entry point named by ``spec`` and say who the plugin is, or why not."""
        from mofa_kernel._adapters import _marked_members, as_agent_plugin
        from mofa_kernel._discovery import PluginSource, load_plugin_object
        from mofa_kernel._serde import to_data

        source = PluginSource(
            plugin_id=spec["plugin_id"],
            entry_point=spec["entry_point"],
            distribution=spec.get("distribution"),
            group=spec.get("group") or "mofa.plugins",
        )
        try:
            obj = load_plugin_object(source)
            plugin = as_agent_plugin(obj, label=repr(source.plugin_id))
        except _FAULTS as exc:
            self.send([FAIL, None, {"type": type(exc).__name__, "message": str(exc)}])
            return
        self.plugin = plugin
        hooks = dict(_marked_members(obj))
        self.observer = hooks.get("on_plugin_event")
        self.send([META, to_data(plugin.metadata), sorted(hooks)])

    def call(self, call_id: int, method: str, args: list[Any]) -> None:
        plugin = self.plugin
        if plugin is None or method not in _METHODS:
            fault = {"type": "PluginError", "message": f"no method {method!r}", "kind": "wire"}
            self.send([FAIL, call_id, fault])
            return
        try:
            if method == "stats":
                self.send([OK, call_id, plugin.stats()])
                return
            if method == "load":
                args = [self.context(args[0])]
            bound = getattr(plugin, method, None)
            if bound is None:  # refresh, save_state, restore_state of a plain AgentPlugin
                self.send([OK, call_id, None])
                return
            coro = bound(*args)
        except _FAULTS as exc:
            self.send([FAIL, call_id, _fault(exc)])
            return
        if not asyncio.iscoroutine(coro):
            self.send([OK, call_id, coro])
            return
        coro = _guarded(coro)
        if _EAGER:  # the call's first step runs here; most calls end in it
            task = asyncio.Task(coro, loop=self.loop, eager_start=True)  # type: ignore[call-arg]
        else:
            task = self.loop.create_task(coro)
        if task.done():
            self.answer(call_id, task)
            return
        self.running[call_id] = task
        task.add_done_callback(lambda done: self.answered(call_id, done))

    def answered(self, call_id: int, task: asyncio.Task[Any]) -> None:
        del self.running[call_id]
        self.answer(call_id, task)

    def answer(self, call_id: int, task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            fault = {"type": "CancelledError", "message": "", "where": None, "kind": "raised"}
            self.send([FAIL, call_id, fault])
            return
        exc = task.exception()
        if exc is None:
            self.send([OK, call_id, task.result()])
        else:
            if isinstance(exc, _Escaped) and exc.__cause__ is not None:
                exc = exc.__cause__
            if isinstance(exc, MemoryError):
                del task  # let the plugin's memory go before building the answer
            self.send([FAIL, call_id, _fault(exc)])

    def context(self, data: dict[str, Any]) -> PluginContext:
        from mofa_kernel._metadata import PluginConfig
        from mofa_kernel._serde import from_data

        from ._remote import RemoteContext

        config = from_data(PluginConfig, data["config"])
        return RemoteContext(self, data["agent_id"], config, data["plugin_id"])

    def request(self, op: str, args: list[Any]) -> asyncio.Future[Any]:
        """Ask the host's context for something; the future holds its answer."""
        self.next_request += 1
        future = self.loop.create_future()
        self.requests[self.next_request] = future
        self.send([CTX, self.next_request, op, args])
        return future

    def observe(self, data: object) -> None:
        observer = self.observer
        if observer is None:
            return
        from mofa_kernel._events import KernelEvent
        from mofa_kernel._serde import from_data

        try:
            result = observer(event=from_data(KernelEvent, data))
            if asyncio.iscoroutine(result):
                task = self.loop.create_task(result)
                self.tasks.add(task)
                task.add_done_callback(self.observed)
        except _FAULTS as exc:
            self.observer_failed(exc)

    def observed(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.observer_failed(task.exception())  # type: ignore[arg-type]

    def observer_failed(self, exc: BaseException) -> None:
        print(f"mofa worker: on_plugin_event raised {type(exc).__name__}: {exc}", file=sys.stderr)

    # -- the whole life ---------------------------------------------------------------------

    def run(self) -> None:
        spec = self.read_spec()
        limit = spec.get("memory_limit")
        if limit:
            import resource

            cap = int(limit) * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        asyncio.set_event_loop(self.loop)
        self.loop.set_exception_handler(_machinery_failed)
        self.loop.run_until_complete(self.serve(spec))

    def read_spec(self) -> dict[str, Any]:
        while True:
            data = os.read(self.read_fd, 1 << 16)
            if not data:
                raise SystemExit(0)
            messages = self.decoder.feed(data)
            if messages:
                message = messages[0]
                if message[0] != SPEC or len(messages) > 1:
                    raise _frames.FrameError("the first message must be the plugin's spec alone")
                spec: dict[str, Any] = message[1]
                return spec

    async def serve(self, spec: dict[str, Any]) -> None:
        if spec.get("sys_path"):
            sys.path[:] = spec["sys_path"]
        self.import_plugin(spec)
        self.loop.add_reader(self.read_fd, self.readable)
        await self.finished


class _Escaped(Exception):
    """Carries a SystemExit or KeyboardInterrupt out of a task; asyncio would re-raise those."""


async def _guarded(coro: Any) -> Any:
    try:
        return await coro
    except (SystemExit, KeyboardInterrupt) as exc:
        raise _Escaped() from exc


def _host_error(message: object) -> Exception:
    from mofa_kernel._errors import PluginError

    return PluginError(str(message))


def _machinery_failed(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """A callback of the worker itself raised: its calls would never be answered, so it ends."""
    exc = context.get("exception")
    if isinstance(exc, MemoryError):
        _end(MEMORY_EXIT)
    print(f"mofa worker: {context.get('message')}: {exc!r}", file=sys.stderr)
    _end(70)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed stream has nothing to lose
            stream.flush()


def _end(status: int) -> NoReturn:
    _flush()
    # os._exit: threads the plugin left running must not hold the process open.
    os._exit(status)


def _preload() -> None:
    """Import what serving a plugin needs before the spec comes: a spare worker waits warm."""
    from mofa_kernel import _adapters, _discovery, _serde  # noqa: F401

    from . import _remote  # noqa: F401


def main(argv: list[str] | None = None) -> None:
    """Serve one plugin over the pipes named in ``argv``; never returns."""
    args = sys.argv[1:] if argv is None else argv
    read_fd, write_fd = int(args[0]), int(args[1])
    for fd in (read_fd, write_fd):
        os.set_inheritable(fd, False)  # children the plugin starts must not hold the pipes
    worker = _Worker(read_fd, write_fd)
    _preload()
    try:
        worker.run()
    except MemoryError:
        _end(MEMORY_EXIT)
    except _frames.FrameError as exc:
        print(f"mofa worker: {exc}", file=sys.stderr)
        _end(70)
    if not worker.dismissed:
        # The host is gone and will not clean up after us: take the whole process group down.
        _flush()
        os.killpg(os.getpgrp(), signal.SIGKILL)
    _end(0)


if __name__ == "__main__":
    main()
