"""The worker process of an isolated plugin: ``python -m mofa_kernel._isolation._worker R W``.

``R`` and ``W`` are the pipe descriptors the host passed (``pass_fds``): the
worker reads frames from ``R`` and writes frames to ``W``; its stdin, stdout
and stderr stay the plugin's own. The first frame names the plugin (its entry
point, distribution and memory cap) and carries the host's trust lock verdicts;
the worker applies the cap, installs the lock's import guard with the digests
the host verified (:mod:`mofa_kernel._trust_guard`), imports the entry point
itself, adapts it as the host would (class-style or hook module), and answers
with the plugin's metadata. Then it serves calls until the host
says ``exit`` or goes away.

The hot path costs no task and no turn of the event loop: while nothing
else could run, the serving task blocks on the pipe, and a call runs its
first step right where it is read; most calls end in it. A call that
suspends takes the serving task over (see :meth:`_Worker.serve`). A fault
the worker survives is returned as the failure of that call; a
``MemoryError`` that escapes the worker's own machinery ends it with
:data:`MEMORY_EXIT`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import select
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, NoReturn

from mofa_kernel._deadline import Resume

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
    READY,
    REPLY,
    SPEC,
    STATE,
    FrameDecoder,
    encode,
    encode_ok,
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
        #: Calls that suspended, by call id: the task that runs each, for ``cancel``.
        self.running: dict[int, asyncio.Task[Any]] = {}
        #: Messages read and not yet handled.
        self.backlog: collections.deque[list[Any]] = collections.deque()
        #: Tasks of the loop not yet done (see :meth:`make_task`).
        self.live_tasks = 0
        self.loop.set_task_factory(self.make_task)
        #: Done when the worker should leave.
        self.ended = self.loop.create_future()
        #: Whether the host said goodbye (``exit``) rather than vanishing (end of file).
        self.dismissed = False

    # -- I/O --------------------------------------------------------------------------------

    def send(self, message: list[Any]) -> None:
        self.write(encode(message))

    def answer(self, call_id: int, value: Any) -> None:
        try:
            frame = encode_ok(call_id, value)
        except (TypeError, ValueError) as exc:  # not JSON: the call fails, the worker lives on
            fault = {"type": "TypeError", "message": str(exc), "where": None, "kind": "wire"}
            frame = encode([FAIL, call_id, fault])
        self.write(frame)

    def write(self, frame: bytes) -> None:
        written = os.write(self.write_fd, frame)
        if written < len(frame):
            view = memoryview(frame)[written:]
            while view:
                view = view[os.write(self.write_fd, view) :]

    def quiet(self) -> bool:
        """Whether nothing but the serving task could run: no call, request, task or callback.

        Then reading the pipe may block the loop, which saves the loop's turns
        on the hot path. Loops without the (CPython) queues looked at here are
        never quiet: they are always served through the loop.
        """
        if self.running or self.requests or self.live_tasks > 1:
            return False
        loop = self.loop
        ready = getattr(loop, "_ready", None)
        scheduled = getattr(loop, "_scheduled", None)
        return ready is not None and scheduled is not None and not ready and not scheduled

    def make_task(
        self, loop: asyncio.AbstractEventLoop, coro: Any, **options: Any
    ) -> asyncio.Task[Any]:
        """The loop's task factory: counts the live tasks, the plugin's own included."""
        task = asyncio.Task(coro, loop=loop, **options)
        self.live_tasks += 1
        task.add_done_callback(self.task_done)
        return task

    def task_done(self, task: asyncio.Task[Any]) -> None:
        self.live_tasks -= 1

    async def readable(self) -> bytes:
        """The next bytes from the host, waiting through the loop."""
        arrived = self.loop.create_future()
        self.loop.add_reader(self.read_fd, _settle, arrived)
        try:
            await arrived
        finally:
            self.loop.remove_reader(self.read_fd)
        return self.read()

    def read(self) -> bytes:
        try:
            return os.read(self.read_fd, 1 << 16)
        except OSError:
            return b""

    def leave(self) -> None:
        if not self.ended.done():
            self.ended.set_result(None)

    async def serve(self) -> None:
        """Handle messages until the host leaves.

        A call runs its first step right here; one that suspends takes this
        task over for the rest of its life (so ``asyncio.current_task()`` is
        the same throughout the call) and a new task serves on.
        """
        backlog = self.backlog
        while not self.ended.done():
            if not backlog:
                data = self.read() if self.quiet() else await self.readable()
                if not data:
                    self.leave()
                    return
                backlog.extend(self.decoder.feed(data))
            while backlog:
                message = backlog.popleft()
                if message[0] != CALL:
                    self.dispatch(message)
                    continue
                begun = self.begin(message[1], message[2], message[3])
                if begun is not None:
                    self.serve_on()
                    await self.finish(message[1], *begun)
                    return

    def serve_on(self) -> None:
        """Start a task that serves; the worker ends if one fails (its calls would hang)."""
        self.loop.create_task(self.serve()).add_done_callback(_served)

    def dispatch(self, message: list[Any]) -> None:
        kind = message[0]
        if kind == REPLY:
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
        elif kind == STATE:
            self.mirror(message[1])
        elif kind == EXIT:
            self.dismissed = True
            self.leave()
        else:
            raise _frames.FrameError(f"unexpected message {kind!r}")

    # -- the plugin -------------------------------------------------------------------------

    def import_plugin(self, spec: dict[str, Any]) -> None:
        """Import the entry point named by ``spec`` and say who the plugin is, or why not."""
        from mofa_kernel._adapters import RELOAD_HOOKS, _marked_members, as_agent_plugin, offers
        from mofa_kernel._discovery import PluginSource, load_plugin_object
        from mofa_kernel._wire import to_data

        source = PluginSource(
            plugin_id=spec["plugin_id"],
            entry_point=spec["entry_point"],
            distribution=spec.get("distribution"),
            distribution_version=spec.get("distribution_version"),
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
        # The hot-reload hooks it offers count as hooks too: a reload asks for those alone.
        offered = {name for name in RELOAD_HOOKS if offers(plugin, name)}
        self.send([META, to_data(plugin.metadata), sorted(offered.union(hooks))])

    def begin(self, call_id: int, method: str, args: list[Any]) -> tuple[Any, Any] | None:
        """Start the call; answer it if it ends in its first step, else return (coroutine, what
        it waits for)."""
        plugin = self.plugin
        if plugin is None or method not in _METHODS:
            fault = {"type": "PluginError", "message": f"no method {method!r}", "kind": "wire"}
            self.send([FAIL, call_id, fault])
            return None
        try:
            if method == "stats":
                self.answer(call_id, plugin.stats())
                return None
            if method == "load":
                args = [self.context(args[0])]
            bound = getattr(plugin, method, None)
            if bound is None:  # refresh, save_state, restore_state of a plain AgentPlugin
                self.answer(call_id, None)
                return None
            coro = bound(*args)
            if not asyncio.iscoroutine(coro):
                self.answer(call_id, coro)
                return None
            try:
                pending = coro.send(None)
            except StopIteration as stop:
                self.answer(call_id, stop.value)
                return None
        except _FAULTS as exc:
            self.fail(call_id, exc)
            return None
        return coro, pending

    async def finish(self, call_id: int, coro: Any, pending: Any) -> None:
        """Drive a call that suspended to its end, in the current task, and answer it."""
        task = asyncio.current_task()
        assert task is not None
        self.running[call_id] = task
        try:
            result = await Resume(coro, pending)
        except _FAULTS as exc:
            self.fail(call_id, exc)
        else:
            self.answer(call_id, result)
        finally:
            del self.running[call_id]

    def fail(self, call_id: int, exc: BaseException) -> None:
        if isinstance(exc, MemoryError):
            exc.__traceback__ = None  # let the plugin's memory go before building the answer
        self.send([FAIL, call_id, _fault(exc)])

    def context(self, data: dict[str, Any]) -> PluginContext:
        """The plugin's context for ``load``, its ``settings_type`` filled in as the host would."""
        from mofa_kernel._metadata import PluginConfig
        from mofa_kernel._settings import plugin_settings
        from mofa_kernel._wire import from_data

        from ._remote import RemoteContext

        config = from_data(PluginConfig, data["config"])
        ctx = RemoteContext(self, data["agent_id"], config, data["plugin_id"])
        plugin_id = data["plugin_id"] or (self.plugin.metadata.id if self.plugin else "")
        ctx.settings = plugin_settings(plugin_id, self.plugin, config.settings)
        return ctx

    def request(self, op: str, args: list[Any]) -> asyncio.Future[Any]:
        """Ask the host's context for something; the future holds its answer."""
        self.next_request += 1
        future = self.loop.create_future()
        self.requests[self.next_request] = future
        self.send([CTX, self.next_request, op, args])
        return future

    def mirror(self, data: object) -> None:
        """Set the plugin's ``state`` as the host's lifecycle did (read-only ones stay as they
        are, as in the host)."""
        from mofa_kernel._types import PluginState
        from mofa_kernel._wire import from_data

        if self.plugin is not None:
            with contextlib.suppress(AttributeError):
                self.plugin.state = from_data(PluginState, data)

    def observe(self, data: object) -> None:
        observer = self.observer
        if observer is None:
            return
        from mofa_kernel._events import KernelEvent
        from mofa_kernel._wire import from_data

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
        if spec.get("sys_path"):
            sys.path[:] = spec["sys_path"]
        if spec.get("trust"):
            # The host's trust lock, before anything of the plugin is imported: approved
            # modules compile from the bytes the host verified, everything else is refused.
            from mofa_kernel._trust_guard import GUARD

            GUARD.restore(spec["trust"])
        asyncio.set_event_loop(self.loop)
        self.loop.set_exception_handler(_machinery_failed)
        self.import_plugin(spec)
        self.serve_on()
        self.loop.run_until_complete(self.ended)

    def read_spec(self) -> dict[str, Any]:
        while True:
            data = os.read(self.read_fd, 1 << 16)
            if not data:
                raise SystemExit(0)
            messages = self.decoder.feed(data)
            if messages:
                message = messages[0]
                if message[0] != SPEC:
                    raise _frames.FrameError("the first message must be the plugin's spec")
                self.backlog.extend(messages[1:])
                spec: dict[str, Any] = message[1]
                return spec


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _served(task: asyncio.Task[None]) -> None:
    exc = None if task.cancelled() else task.exception()
    if exc is not None:
        _machinery_failed(task.get_loop(), {"message": "serving failed", "exception": exc})


def _host_error(message: object) -> Exception:
    from mofa_kernel._errors import PluginError

    return PluginError(str(message))


def _machinery_failed(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """A callback of the worker itself raised: its calls would never be answered, so it ends."""
    exc = context.get("exception")
    if isinstance(exc, MemoryError):
        _end(MEMORY_EXIT)
    if isinstance(exc, BrokenPipeError):
        _host_gone()
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
    import importlib.metadata  # noqa: F401

    from mofa_kernel import _adapters, _discovery, _settings  # noqa: F401
    from mofa_kernel._metadata import PluginConfig, PluginMetadata
    from mofa_kernel._types import PluginType
    from mofa_kernel._wire import from_data, to_data

    from . import _remote  # noqa: F401

    # The first conversions build the converter's hooks: a spare worker does that ahead.
    to_data(PluginMetadata("preload", "preload", PluginType.TOOL))
    from_data(PluginConfig, to_data(PluginConfig()))


def main(argv: list[str] | None = None) -> None:
    """Serve one plugin over the pipes named in ``argv``; never returns."""
    args = sys.argv[1:] if argv is None else argv
    read_fd, write_fd = int(args[0]), int(args[1])
    for fd in (read_fd, write_fd):
        os.set_inheritable(fd, False)  # children the plugin starts must not hold the pipes
    _watch_host()
    worker = _Worker(read_fd, write_fd)
    _preload()
    try:
        worker.send([READY])
        worker.run()
    except BrokenPipeError:
        _host_gone()
    except MemoryError:
        _end(MEMORY_EXIT)
    except _frames.FrameError as exc:
        print(f"mofa worker: {exc}", file=sys.stderr)
        _end(70)
    if not worker.dismissed:
        _host_gone()
    _end(0)


def _watch_host() -> None:
    """Take the worker's process group down when the host process ends, whatever the plugin
    is doing.

    The end of the host's pipe is noticed only by reading it, and a plugin that never yields
    keeps the worker from reading: without this, a host killed meanwhile (``kill -9``, the
    OOM killer) would leave the worker spinning forever. A thread waits on a descriptor of
    the host process (``pidfd_open``, Linux 5.3 and later); elsewhere only the pipe tells.
    """
    host = os.getppid()
    try:
        handle = os.pidfd_open(host)
    except (AttributeError, OSError):  # not Linux, or a kernel without pidfd
        return
    if os.getppid() != host:  # the host ended before the descriptor was opened
        os.killpg(os.getpgrp(), signal.SIGKILL)

    def wait() -> None:
        select.select((handle,), (), ())  # readable once the host has ended
        os.killpg(os.getpgrp(), signal.SIGKILL)

    threading.Thread(target=wait, name="mofa-host-watch", daemon=True).start()


def _host_gone() -> NoReturn:
    """The host went away and will not clean up after us: take the whole process group down."""
    with contextlib.suppress(OSError):  # a closed stream, or nobody left to read it
        _flush()
    os.killpg(os.getpgrp(), signal.SIGKILL)
    os._exit(0)  # not reached: the group includes this process


if __name__ == "__main__":
    main()
