"""One reload attempt of one plugin, as a transaction: it serves new code, or nothing changed.

The steps, for a plugin that is up (loaded, running or paused):

1. syntax-check the sources that will be imported;
2. snapshot the plugin's modules in ``sys.modules``;
3. drop their cached bytecode, remove them from ``sys.modules``;
4. import afresh, build the new instance, ``load`` and ``init_plugin`` it;
5. ``save_state`` on the old instance, ``restore_state`` on the new one
   (plain data only: the old code's objects never reach the new code);
6. ``start`` it (and ``pause`` it, if the old one was paused);
7. swap it in: one synchronous step, so every call after it reaches the new
   instance while calls already running finish on the old one.

The old instance then retires in the background: once its last call has
returned it is stopped, its leftover background tasks are cancelled and
awaited, and it is unloaded. If a step fails, the half-built instance is
taken down, the module snapshot is put back, and the old instance never
stopped serving.

An isolated plugin's new code is imported by a new worker, never here (see
``_workers``): steps 2 and 3 touch nothing of the host's, step 4 starts that
worker, and the old worker retires, then ends with its process group.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import linecache
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import attrs

from mofa_kernel._adapters import as_agent_plugin, offers
from mofa_kernel._errors import (
    PluginConfigError,
    PluginError,
    PluginInitError,
    PluginLifecycleError,
    PluginLoadError,
    PluginNotFoundError,
    PluginTimeoutError,
)
from mofa_kernel._events import PluginEvent, ReloadEvent
from mofa_kernel._metadata import to_json_value
from mofa_kernel._runtime import TrialFailed
from mofa_kernel._settings import load_with_settings  # plugin settings (issue 14)
from mofa_kernel._types import PluginState

from ._code import (
    CodeUnit,
    Fingerprint,
    ModuleSnapshot,
    NotReloadable,
    current_namespaces,
    describe_failure,
    drop_bytecode,
    syntax_error,
)
from ._steps import StepFailed, set_state
from ._tasks import cancel_and_wait, tasks_of
from ._tracker import NOTHING, Tracker
from ._workers import end_worker, is_worker, spawn

if TYPE_CHECKING:
    from mofa_kernel._plugin import AgentPlugin
    from mofa_kernel._records import PluginRecord
    from mofa_kernel._reload_config import HotReloadConfig
    from mofa_kernel._runtime import ReloadPort

    from ._host import ReloadHost

__all__ = ["Attempt", "AttemptResult"]

UNLOADED: Final = PluginState.UNLOADED
LOADING: Final = PluginState.LOADING
LOADED: Final = PluginState.LOADED
RUNNING: Final = PluginState.RUNNING
PAUSED: Final = PluginState.PAUSED

#: How long to wait for an old instance's calls and tasks when the plugin has no deadline.
_NO_DEADLINE_WAIT: Final = 30.0
#: How often to look again whether the old instance's last calls have returned.
_CALLS_POLL: Final = 0.01

_ERROR_FOR_STEP: Final[dict[str, type[PluginError]]] = {
    "trust check": PluginLoadError,
    "syntax check": PluginLoadError,
    "import": PluginLoadError,
    "construct": PluginLoadError,
    "load": PluginLoadError,
    "init_plugin": PluginInitError,
}


@attrs.frozen
class AttemptResult:
    """How an attempt ended: ``reloaded`` (new code serves), or ``error`` with the failure."""

    reloaded: bool
    error: PluginError | None = None
    #: Another attempt at the same bytes could succeed (not a syntax error).
    retryable: bool = True
    #: The old instance's retirement, to await for a caller that wants it done.
    retired: asyncio.Task[None] | None = None


class Attempt:
    """One reload attempt of one plugin; :meth:`run` never raises for the plugin's failures."""

    def __init__(
        self,
        manager: ReloadHost,
        port: ReloadPort,
        config: HotReloadConfig,
        tracker: Tracker,
        *,
        attempt: int,
        fingerprint: Fingerprint | None,
        retiring: set[asyncio.Task[None]],
    ) -> None:
        self.manager = manager
        self.port = port
        self.config = config
        self.tracker = tracker
        self.pid = tracker.plugin_id
        self.attempt = attempt
        self.fingerprint = fingerprint
        self.retiring = retiring
        self.path = tracker.report_path()
        self.unit = tracker.unit
        self.timeout: float | None = None
        self.saved: object = NOTHING

    # -- the whole attempt ----------------------------------------------------------------

    async def run(self) -> AttemptResult:
        began = time.perf_counter()
        manager = self.manager
        manager.emit(ReloadEvent.ReloadStarted(plugin_id=self.pid, path=self.path))
        record = manager.record(self.pid)
        self.timeout = record.timeout
        hot = record.status == "registered" and record.state in (LOADED, RUNNING, PAUSED)
        try:
            if hot:
                retired: asyncio.Task[None] | None = await self._swap_running(record)
            else:
                retired = None
                await self._replace_stopped(record)
        except StepFailed as failure:
            return await self._failed(failure, began, hot=hot)
        except BaseException:
            # Cancelled (the reloader is stopping) or interrupted: say so, then let it end us.
            self._emit_end(began, success=False)
            raise
        self._emit_end(began, success=True)
        return AttemptResult(True, retired=retired)

    async def refresh(self, plugin: AgentPlugin) -> PluginError | None:
        """The code is unchanged: ``refresh()`` the serving instance, reported as a reload."""
        began = time.perf_counter()
        self.manager.emit(ReloadEvent.ReloadStarted(plugin_id=self.pid, path=self.path))
        self.timeout = self.manager.record(self.pid).timeout
        try:
            await self._call("refresh", plugin.refresh)  # type: ignore[attr-defined]
        except StepFailed as failure:
            self.manager.emit(
                ReloadEvent.ReloadFailed(
                    plugin_id=self.pid, path=self.path, error=failure.message, attempt=self.attempt
                )
            )
            self._emit_end(began, success=False)
            return PluginLifecycleError(
                f"refresh of {self.pid!r} failed: {failure.message}",
                plugin_id=self.pid,
                hook="refresh",
            )
        self._emit_end(began, success=True)
        return None

    def _emit_end(self, began: float, *, success: bool) -> None:
        self.manager.emit(
            ReloadEvent.ReloadCompleted(
                plugin_id=self.pid,
                path=self.path,
                success=success,
                duration=time.perf_counter() - began,
            )
        )

    async def _failed(self, failure: StepFailed, began: float, *, hot: bool) -> AttemptResult:
        manager = self.manager
        message = failure.message
        manager.emit(
            ReloadEvent.ReloadFailed(
                plugin_id=self.pid, path=self.path, error=message, attempt=self.attempt
            )
        )
        if hot and self.config.auto_rollback:
            manager.emit(ReloadEvent.RollbackTriggered(plugin_id=self.pid, reason=message))
            if self.config.preserve_state:
                # The previous instance never stopped serving, so its state is intact.
                manager.emit(ReloadEvent.StateRestored(plugin_id=self.pid))
        elif hot:
            await self._take_down(message)
        self._emit_end(began, success=False)
        if failure.timeout is not None:
            error: PluginError = PluginTimeoutError(
                f"reload of {self.pid!r} failed: {message}",
                plugin_id=self.pid,
                hook=failure.step,
                timeout=failure.timeout,
            )
        else:
            cls = _ERROR_FOR_STEP.get(failure.step, PluginLifecycleError)
            error = cls(f"reload of {self.pid!r} failed: {message}", plugin_id=self.pid)
            error.hook = failure.step
        return AttemptResult(False, error, retryable=not failure.final)

    # -- a plugin that is up: build beside it, then swap ----------------------------------

    async def _swap_running(self, record: PluginRecord) -> asyncio.Task[None]:
        manager = self.manager
        state = record.state
        old = manager.get(self.pid)
        unit = self._unit()
        self._trust_check()  # first: it judges the new code, and the spec carries the verdicts
        spec = self.port.worker_spec(self.pid)
        self._syntax_check(unit, in_worker=spec is not None)
        snapshot = ModuleSnapshot(unit)
        old_namespaces = snapshot.namespaces()
        new: AgentPlugin | None = None
        new_namespaces: set[int] = set()
        loaded = started = False
        try:
            self._forget_modules(unit, snapshot)
            new = self._build(record) if spec is None else await spawn(spec, self.pid, self.timeout)
            new_namespaces = current_namespaces(unit)
            ctx = self.port.context(self.pid)
            agent = new
            set_state(agent, LOADING)
            # plugin settings (issue 14): the new code's settings_type is filled before its load
            await self._call("load", lambda: load_with_settings(self.pid, agent, ctx))
            loaded = True
            set_state(agent, LOADED)
            if state != LOADED or self.port.initialized(self.pid):
                await self._call("init_plugin", agent.init_plugin)
            restored = await self._carry_state(old, agent)
            if state in (RUNNING, PAUSED):
                await self._call("start", agent.start)
                started = True
                set_state(agent, RUNNING)
                if state == PAUSED:
                    await self._call("pause", agent.pause)
                    set_state(agent, PAUSED)
            calls = self.port.calls(self.pid)
            try:
                self.port.swap(self.pid, agent, state, ctx)
            except PluginError as exc:
                raise StepFailed("swap", f"swap: {exc}") from None
        except BaseException as exc:
            problems = await self._discard(
                new, loaded=loaded, started=started, namespaces=new_namespaces
            )
            snapshot.restore()
            if isinstance(exc, StepFailed) and problems:
                exc.message += "; cleaning up the new instance: " + "; ".join(problems)
            raise
        if restored:
            manager.emit(ReloadEvent.StateRestored(plugin_id=self.pid))
        self._refresh_unit(unit)
        task = asyncio.get_running_loop().create_task(
            self._retire(old, old_namespaces, calls, was_up=state != LOADED),
            name=f"mofa-retire-{self.pid}",
        )
        self.retiring.add(task)
        task.add_done_callback(self.retiring.discard)
        return task

    async def _carry_state(self, old: AgentPlugin, new: AgentPlugin) -> bool:
        """``save_state`` on the old instance, ``restore_state`` on the new; whether restored."""
        if not self.config.preserve_state or not offers(old, "save_state"):
            return False
        data = await self._save(old)
        if not offers(new, "restore_state"):
            return False
        await self._call("restore_state", lambda: new.restore_state(data))  # type: ignore[attr-defined]
        return True

    async def _save(self, old: AgentPlugin) -> object:
        raw = await self._call("save_state", old.save_state, returns=True)  # type: ignore[attr-defined]
        try:
            data = to_json_value(raw)  # a deep copy into plain data: nothing of the old code
        except PluginConfigError as exc:
            raise StepFailed(
                "save_state", f"save_state: returned {type(raw).__name__}, not JSON data ({exc})"
            ) from None
        self.saved = data
        self.manager.emit(ReloadEvent.StatePreserved(plugin_id=self.pid))
        return data

    async def _discard(
        self, new: AgentPlugin | None, *, loaded: bool, started: bool, namespaces: set[int]
    ) -> list[str]:
        """Take down a new instance that will not serve; one line per problem doing so."""
        if new is None:
            return []
        problems = []
        # A new worker that crashed or overran a deadline is past running hooks: it is ended.
        answers = not is_worker(new) or new.answering
        if started and answers:
            problems += await self._try("stop", new.stop)
        problems += await cancel_and_wait(tasks_of(new, namespaces), self._wait_limit())
        if loaded and answers:
            problems += await self._try("unload", new.unload)
        await end_worker(new)
        set_state(new, UNLOADED)
        return problems

    async def _take_down(self, message: str) -> None:
        """No rollback wanted: the old instance stops serving and the plugin shows the failure.

        Its state is kept (as data) for the next version that loads.
        """
        manager = self.manager
        old = manager.get(self.pid)
        if self.config.preserve_state:
            if self.saved is NOTHING and offers(old, "save_state"):
                # If even that fails there is nothing to carry: the next version starts afresh.
                with contextlib.suppress(StepFailed):
                    await self._save(old)
            if self.saved is not NOTHING:
                self.tracker.carried = self.saved
        unit = self._unit()
        try:
            if manager.state(self.pid) in (RUNNING, PAUSED):
                await manager.stop(self.pid)
            await cancel_and_wait(tasks_of(old, current_namespaces(unit)), self._wait_limit())
            if manager.state(self.pid) == LOADED:
                await manager.unload(self.pid)
        except PluginError:
            return  # the manager put the plugin in the error state and reported why
        self.port.fail(self.pid, message)

    # -- a plugin that is not up: replace it, then bring it up if it had failed -----------

    async def _replace_stopped(self, record: PluginRecord) -> None:
        manager = self.manager
        unit = self._unit()
        self._trust_check()  # first: it judges the new code, and the spec carries the verdicts
        spec = self.port.worker_spec(self.pid)
        self._syntax_check(unit, in_worker=spec is not None)
        snapshot = ModuleSnapshot(unit)
        old_namespaces = snapshot.namespaces()
        old = manager.get(self.pid) if record.status == "registered" else None
        new: AgentPlugin | None = None
        try:
            self._forget_modules(unit, snapshot)
            new = self._build(record) if spec is None else await spawn(spec, self.pid, self.timeout)
            if old is not None and record.state.is_error:
                with contextlib.suppress(PluginError):  # recorded by the manager; we go on
                    await manager.unload(self.pid)
            try:
                if old is None:
                    self.port.fill(self.pid, new)
                else:
                    self.port.swap(self.pid, new, manager.state(self.pid), None)
            except PluginError as exc:
                raise StepFailed("swap", f"swap: {exc}") from None
        except BaseException:
            snapshot.restore()
            await end_worker(new)
            raise
        # The old code was not serving: from here on the new code stays, working or not.
        self._refresh_unit(unit)
        if old is not None:
            await end_worker(old)  # a worker started at discovery and never loaded
            await cancel_and_wait(tasks_of(old, old_namespaces), self._wait_limit())
            if not record.state.is_error:
                return  # UNLOADED by the host's choice: it stays so, with the new code
        await self._bring_up(record)

    async def _bring_up(self, record: PluginRecord) -> None:
        manager = self.manager
        try:
            await manager.load(self.pid)
            await manager.init_plugin(self.pid)
        except PluginError as exc:
            raise StepFailed(exc.hook or "load", str(exc)) from None
        carried, self.tracker.carried = self.tracker.carried, NOTHING
        if carried is not NOTHING and self.config.preserve_state:
            plugin = manager.get(self.pid)
            if offers(plugin, "restore_state"):
                try:
                    await self._call("restore_state", lambda: plugin.restore_state(carried))  # type: ignore[attr-defined]
                except StepFailed as failure:
                    self.port.fail(self.pid, failure.message)
                    raise
                manager.emit(ReloadEvent.StateRestored(plugin_id=self.pid))
        if record.enabled and record.config.auto_start:
            try:
                await manager.start(self.pid)
            except PluginError as exc:
                raise StepFailed(exc.hook or "start", str(exc)) from None

    # -- retiring the old instance --------------------------------------------------------

    async def _retire(
        self, old: AgentPlugin, namespaces: set[int], calls: tuple[object, ...], *, was_up: bool
    ) -> None:
        """Stop and unload ``old`` once its last call has returned; report what went wrong."""
        problems = []
        if not await self._calls_done(set(calls)):
            problems.append(
                f"calls still running after {self._wait_limit():g}s; stopping it anyway"
            )
        if was_up:
            problems += await self._try("stop", old.stop)
            set_state(old, LOADED)
        problems += await cancel_and_wait(tasks_of(old, namespaces), self._wait_limit())
        problems += await self._try("unload", old.unload)
        set_state(old, UNLOADED)
        for problem in problems:
            self.manager.emit(
                PluginEvent.PluginError(
                    plugin_id=self.pid, error=f"retiring the previous version: {problem}"
                )
            )

    async def _calls_done(self, pending: set[object]) -> bool:
        manager = self.manager
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait_limit()
        while pending:
            try:
                pending.intersection_update(self.port.calls(self.pid))
            except PluginNotFoundError:
                return True  # removed from the manager: nobody calls it any more
            if not pending:
                break
            if loop.time() >= deadline:
                return False
            try:
                # Returns at once when the plugin is idle; else look again a little later.
                await manager.wait_idle(self.pid, _CALLS_POLL)
            except PluginNotFoundError:
                return True
        return True

    # -- steps ----------------------------------------------------------------------------

    def _unit(self) -> CodeUnit:
        if self.unit is None:
            raise StepFailed("import", self.tracker.problem or "import: no code to reload")
        return self.unit

    def _refresh_unit(self, unit: CodeUnit) -> None:
        """The new code may import other modules (and so live in more folders)."""
        with contextlib.suppress(NotReloadable):  # keep the old description if it cannot be read
            self.tracker.unit = CodeUnit.of_module(unit.root)

    def _trust_check(self) -> None:
        # With the trust lock on, new code of an installed plugin must still be approved
        # (an upgrade, or an edit of the installed files); the old version keeps serving.
        refusal = self.port.trust_refusal(self.pid)
        if refusal is not None:
            raise StepFailed("trust check", f"trust check: {refusal}", final=True)

    def _syntax_check(self, unit: CodeUnit, *, in_worker: bool) -> None:
        # The modules that will be imported again; a new module is checked by its import.
        files = {path for path in unit.loaded_files() if path.suffix == ".py"}
        files.update(path for path in unit.files if path.suffix == ".py")
        if in_worker:  # nothing of it is imported here: check the changed files (compiled only)
            files.update(path for path in self._changed(unit) if path.suffix == ".py")
        error = syntax_error(sorted(files))
        if error is not None:
            raise StepFailed(
                "syntax check", describe_failure("syntax check", error, unit), final=True
            )

    def _changed(self, unit: CodeUnit) -> list[Path]:
        if self.fingerprint is not None:
            return self.fingerprint.changed_sources(self.tracker.loaded)
        return unit.loaded_files()

    def _forget_modules(self, unit: CodeUnit, snapshot: ModuleSnapshot) -> None:
        drop_bytecode(self._changed(unit))
        snapshot.clear()
        importlib.invalidate_caches()
        linecache.checkcache()

    def _build(self, record: PluginRecord) -> AgentPlugin:
        recipe = self.tracker.recipe
        assert recipe is not None
        source = record.source
        try:
            importlib.import_module(source.module if source is not None else recipe.module)
        except (Exception, SystemExit) as exc:
            message = describe_failure("import", exc, self.unit)
            # The same bytes cannot compile differently: no retry for a syntax error.
            raise StepFailed("import", message, final=isinstance(exc, SyntaxError)) from exc
        try:
            target = recipe.build(source)
            agent = as_agent_plugin(target, label=repr(self.pid))
        except (Exception, SystemExit) as exc:
            raise StepFailed("construct", describe_failure("construct", exc, self.unit)) from exc
        if agent.metadata.id != self.pid:
            raise StepFailed(
                "construct",
                f"construct: the new code describes plugin {agent.metadata.id!r}, not {self.pid!r}",
            )
        return agent

    def _wait_limit(self) -> float:
        return self.timeout if self.timeout is not None else _NO_DEADLINE_WAIT

    async def _call(self, step: str, call: Callable[[], Any], *, returns: bool = False) -> Any:
        """Run one plugin call under the plugin's deadline; a failure is a :class:`StepFailed`."""
        try:
            return await self.port.trial(step, call, self.timeout, returns=returns)
        except TrialFailed as failed:
            message = (
                failed.note
                if failed.cause is None
                else describe_failure(step, failed.cause, self.unit)
            )
            raise StepFailed(step, message, timeout=failed.timeout) from failed.cause

    async def _try(self, step: str, call: Callable[[], Any]) -> list[str]:
        try:
            await self._call(step, call)
        except StepFailed as failure:
            return [failure.message]
        return []
