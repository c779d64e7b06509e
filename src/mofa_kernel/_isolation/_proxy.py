"""The host's face of an isolated plugin: :class:`IsolatedPlugin`, a plugin whose every call is RPC.

To the manager it is a class-style plugin like any other, so registering it
gives an isolated plugin the same lifecycle, states, events, deadlines and
context as an inline one. Behind it, a worker process (see ``_worker``)
imports and runs the real plugin. What only a process can do, die between
calls, reaches the runtime through :meth:`IsolatedPlugin.on_worker_exit`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from mofa_kernel._errors import PluginError, PluginExecutionError, PluginLoadError
from mofa_kernel._hookspecs import hookimpl
from mofa_kernel._plugin import AgentPlugin, HotReloadable
from mofa_kernel._types import PluginState

from . import _spawn
from ._host import WorkerProcess
from ._spawn import WorkerSpec

if TYPE_CHECKING:
    from mofa_kernel._context import PluginContext
    from mofa_kernel._events import KernelEvent
    from mofa_kernel._metadata import PluginMetadata

    from ._exit import WorkerExit

__all__ = ["IsolatedPlugin"]

_MISSING: Final = object()
ExitListener = Callable[["WorkerExit"], object]


class IsolatedPlugin(AgentPlugin, HotReloadable):
    """A plugin served by a worker process; build one with :meth:`spawn`.

    ``load`` starts a new worker when there is none (after ``unload`` or a
    crash), so the manager's usual UNLOADED -> LOADING -> LOADED -> RUNNING
    path is also the restart. ``unload`` ends the worker and its process
    group. ``deadline`` (seconds) is the deadline the caller applies; a call
    cancelled after running that long ends the worker.
    """

    #: How the runtime tells an isolated plugin from others without importing this module.
    mofa_isolated = True

    def __init__(
        self,
        spec: WorkerSpec,
        metadata: PluginMetadata,
        *,
        hooks: tuple[str, ...] = (),
        deadline: float | None = None,
    ) -> None:
        self.spec = spec
        self._metadata = metadata
        self._hooks = frozenset(hooks)
        self.deadline = deadline
        self._state = PluginState.UNLOADED
        self._worker: WorkerProcess | None = None
        self._prepared: _spawn.Prepared | None = None
        self._stats: dict[str, Any] = {}
        self._listeners: list[ExitListener] = []
        #: How the last worker ended unasked (``None`` until one does).
        self.last_exit: WorkerExit | None = None

    @classmethod
    async def spawn(cls, spec: WorkerSpec, *, deadline: float | None = None) -> IsolatedPlugin:
        """Start a worker for ``spec``; the proxy learns the plugin's metadata from it.

        Raises :class:`~mofa_kernel.PluginLoadError` when the worker cannot
        import or adapt the plugin, or ends before saying who it is.
        """
        from mofa_kernel._metadata import PluginMetadata
        from mofa_kernel._wire import from_data

        proxy = cls.__new__(cls)
        worker = WorkerProcess(spec, proxy._context_request)
        data, hooks = await worker.start()
        metadata = from_data(PluginMetadata, data)
        cls.__init__(proxy, spec, metadata, hooks=tuple(hooks), deadline=deadline)
        proxy._attach(worker)
        return proxy

    @classmethod
    def prepare(cls, spec: WorkerSpec, *, deadline: float | None = None) -> IsolatedPlugin:
        """Like :meth:`spawn`, without an event loop (discovery is synchronous): the worker
        imports the plugin now and is tied to the loop at ``load``."""
        from mofa_kernel._metadata import PluginMetadata
        from mofa_kernel._wire import from_data

        prepared = _spawn.prepare(spec, deadline)
        try:
            metadata = from_data(PluginMetadata, prepared.metadata)
        except PluginError:
            _spawn.kill_now(prepared.launched)
            raise
        proxy = cls(spec, metadata, hooks=prepared.hooks, deadline=deadline)
        proxy._prepared = prepared
        return proxy

    @property
    def metadata(self) -> PluginMetadata:
        return self._metadata

    @property
    def worker_pid(self) -> int | None:
        """The running worker's process id (also its process group's), or ``None``."""
        worker = self._worker
        if worker is None and self._prepared is not None:
            return self._prepared.launched.pid
        return worker.pid if worker is not None and worker.alive else None

    @property
    def answering(self) -> bool:
        """Whether a worker is there to answer calls (not ended, nor being ended)."""
        worker = self._worker
        return worker is not None and worker.answering

    def implements(self, hook: str) -> bool:
        """Whether the plugin in the worker has ``hook`` (``on_plugin_event``, ``save_state``)."""
        return hook in self._hooks

    def __repr__(self) -> str:
        return f"IsolatedPlugin({self._metadata.id!r}, pid={self.worker_pid})"

    def on_worker_exit(self, listener: ExitListener) -> None:
        """Call ``listener(exit)`` whenever a worker of this plugin ends without being asked.

        That is a crash, a signal, the memory cap, or a call that overran its
        deadline; never ``unload`` or :meth:`shut_down`. Calls in flight have
        already failed when the listener runs.
        """
        self._listeners.append(listener)

    def kill_worker(self, reason: WorkerExit) -> None:
        """End the worker now (SIGTERM, SIGKILL after the grace), reporting ``reason``."""
        if self._worker is not None:
            self._worker.terminate(reason)

    async def shut_down(self) -> None:
        """End the worker, if any, without running the plugin's hooks (the host is leaving)."""
        worker, self._worker = self._worker, None
        prepared, self._prepared = self._prepared, None
        if worker is not None:
            await worker.close()
        if prepared is not None:
            await _spawn.discard(prepared)

    # -- the worker -------------------------------------------------------------------------

    def _attach(self, worker: WorkerProcess) -> None:
        self._worker = worker
        worker.on_exit(self._worker_exited)
        self._tell_state()

    @property
    def state(self) -> PluginState:
        """Set by the runtime, and passed on to the plugin in the worker."""
        return self._state

    @state.setter
    def state(self, value: PluginState) -> None:
        self._state = value
        self._tell_state()

    def _tell_state(self) -> None:
        worker = self._worker
        if worker is not None:
            from mofa_kernel._wire import to_data

            worker.send_state(to_data(self._state))

    def _worker_exited(self, exit: WorkerExit) -> None:
        self.last_exit = exit
        for listener in list(self._listeners):
            listener(exit)

    async def _live_worker(self) -> WorkerProcess:
        worker = self._worker
        if worker is not None and worker.exit is None:
            return worker
        if worker is not None:
            await worker.close()  # what a crashed worker left behind is already gone
        prepared, self._prepared = self._prepared, None
        if prepared is not None:
            ready = WorkerProcess(self.spec, self._context_request)
            await ready.attach(prepared)
            self._attach(ready)
            return ready
        fresh = WorkerProcess(self.spec, self._context_request)
        data, hooks = await fresh.start()
        if data.get("id") != self._metadata.id:
            await fresh.close()
            raise PluginLoadError(
                f"plugin {self._metadata.id!r}: its worker now reports id {data.get('id')!r}",
                plugin_id=self._metadata.id,
            )
        from mofa_kernel._metadata import PluginMetadata
        from mofa_kernel._wire import from_data

        self._metadata = from_data(PluginMetadata, data)
        self._hooks = frozenset(hooks)
        self._attach(fresh)
        return fresh

    def _absent(self, hook: str) -> PluginExecutionError:
        ended = f": {self.last_exit}" if self.last_exit is not None else ""
        pid = self._metadata.id
        return PluginExecutionError(
            f"plugin {pid!r}: no worker is running{ended}", plugin_id=pid, hook=hook
        )

    async def _call(self, hook: str, *args: Any) -> Any:
        worker = self._worker
        if worker is None:
            raise self._absent(hook)
        return await worker.call(hook, list(args), self.deadline)

    async def _context_request(self, op: str, args: list[Any]) -> Any:
        ctx = self.context
        if ctx is None:
            raise PluginExecutionError("the plugin has no context before load")
        if op == "get":
            value = ctx.shared_state.get(args[0], _MISSING)
            return [False, None] if value is _MISSING else [True, value]
        if op == "set":
            return await ctx.set_state(args[0], args[1])
        if op == "remove":
            return await ctx.remove_state(args[0])
        if op == "swap":
            return _swap(ctx, *args)
        if op == "emit":
            from mofa_kernel._events import KernelEvent
            from mofa_kernel._wire import from_data

            return await ctx.emit_event(from_data(KernelEvent, args[0]))
        raise PluginExecutionError(f"unknown context request {op!r}")

    # -- the plugin's lifecycle, over the wire ----------------------------------------------

    async def load(self, ctx: PluginContext) -> Any:  # the worker's answer: the manager checks it
        from mofa_kernel._wire import to_data

        self.context = ctx
        worker = await self._live_worker()
        data = {"agent_id": ctx.agent_id, "config": to_data(ctx.config), "plugin_id": ctx.plugin_id}
        return await worker.call("load", [data], self.deadline)

    async def init_plugin(self) -> Any:
        return await self._call("init_plugin")

    async def start(self) -> Any:
        result = await self._call("start")
        self._stats = await self._call("stats") or {}
        return result

    async def pause(self) -> Any:
        return await self._call("pause")

    async def resume(self) -> Any:
        return await self._call("resume")

    async def stop(self) -> Any:
        return await self._call("stop")

    async def unload(self) -> Any:
        """The plugin's ``unload``, then the end of its worker and everything it started.

        After a worker's death there is nothing left to run ``unload`` in: this
        only makes sure its process group is gone.
        """
        worker = self._worker
        try:
            if worker is not None and worker.exit is None:
                return await worker.call("unload", [], self.deadline)
            return None
        finally:
            await self.shut_down()

    async def execute(self, input: str) -> str:
        worker = self._worker
        if worker is None:
            raise self._absent("execute")
        result: str = await worker.call("execute", [input], self.deadline)
        return result

    async def health_check(self) -> bool:
        healthy: bool = await self._call("health_check")
        self._stats = await self._call("stats") or {}
        return healthy

    def stats(self) -> dict[str, Any]:
        """The plugin's figures as of the last ``start`` or ``health_check``."""
        return dict(self._stats)

    async def refresh(self) -> Any:
        return await self._call("refresh")

    async def save_state(self) -> object:
        return await self._call("save_state")

    async def restore_state(self, state: object) -> Any:
        return await self._call("restore_state", state)

    @hookimpl
    def on_plugin_event(self, event: KernelEvent) -> None:
        """Forward kernel events to the worker when its plugin observes them."""
        worker = self._worker
        if worker is not None and "on_plugin_event" in self._hooks:
            from mofa_kernel._wire import to_data

            worker.send_event(to_data(event))


def _swap(ctx: PluginContext, key: str, found: bool, old: Any, new: Any) -> bool:
    """Set ``key`` to ``new`` only if it still holds ``old`` (or is still missing)."""
    shared = ctx.shared_state
    with shared._lock:
        data = shared._data
        if (key in data) != found or (found and data[key] != old):
            return False
        data[key] = new
        return True
