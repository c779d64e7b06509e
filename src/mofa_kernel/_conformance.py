"""The conformance check for plugin authors (no pytest needed).

:func:`check_plugin` and :func:`assert_conforms` drive one plugin through
the contract every plugin must meet. Both are public through
:mod:`mofa_kernel.testing`, and work in any test runner, or none.
"""

from __future__ import annotations

import contextlib
import inspect
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Final, TypeVar

import attrs

from ._errors import InvalidStateError, PluginConfigError, PluginError, PluginExecutionError
from ._events import KernelEvent, PluginEvent
from ._lifecycle_run import (
    config_of,
    describe,
    instance_of,
    register_all,
    short,
    start_dependencies,
)
from ._metadata import PluginConfig, PluginMetadata, to_json_value
from ._plugin import AgentPlugin
from ._types import PluginState

if TYPE_CHECKING:
    from ._manager import PluginManager

__all__ = ["ConformanceReport", "assert_conforms", "check_plugin"]

_T = TypeVar("_T")


UNLOADED: Final = PluginState.UNLOADED
LOADING: Final = PluginState.LOADING
LOADED: Final = PluginState.LOADED
RUNNING: Final = PluginState.RUNNING
PAUSED: Final = PluginState.PAUSED


# -- the conformance check -------------------------------------------------------------------


@attrs.frozen
class ConformanceReport:
    """What :func:`check_plugin` found: one line per problem, and the checks that ran.

    ``outputs`` holds execute's answers to the inputs it was given (a
    rejected input gives ``None``).
    """

    plugin_id: str | None
    problems: tuple[str, ...]
    checks: tuple[str, ...]
    outputs: tuple[str | None, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether the plugin passed every check."""
        return not self.problems

    def __str__(self) -> str:
        who = f"plugin {self.plugin_id!r}" if self.plugin_id else "the plugin"
        if self.ok:
            return f"{who} conforms ({', '.join(self.checks)})"
        count = len(self.problems)
        lines = [f"{who} does not conform ({count} problem{'s' if count > 1 else ''}):"]
        lines += [f"  {problem}" for problem in self.problems]
        return "\n".join(lines)


class _Stop(Exception):
    """The check cannot go on; the message is the problem to report."""


def _offers(plugin: object, hook: str) -> bool:
    from ._adapters import HookPlugin

    if isinstance(plugin, HookPlugin):
        return plugin.implements(hook)
    return callable(getattr(plugin, hook, None))


#: The methods of a class-style plugin that the kernel awaits, and those it calls plainly.
_AWAITED: Final = (
    "load", "init_plugin", "start", "pause", "resume", "stop", "unload", "execute",
    "health_check", "refresh", "save_state", "restore_state",
)  # fmt: skip
_PLAIN: Final = ("stats",)


def _kind_problems(agent: AgentPlugin) -> list[str]:
    """Methods of a class-style plugin declared ``def`` where ``async def`` is due, or back."""
    from ._adapters import HookPlugin

    if isinstance(agent, HookPlugin):  # hook functions may be plain or async
        return []
    problems = []
    for name in _AWAITED:
        method = getattr(type(agent), name, None)
        if callable(method) and not inspect.iscoroutinefunction(method):
            problems.append(f"{name} is not async: declare it with 'async def'")
    for name in _PLAIN:
        method = getattr(type(agent), name, None)
        if callable(method) and inspect.iscoroutinefunction(method):
            problems.append(f"{name} is async: declare it with a plain 'def'")
    return problems


def _set_state(plugin: AgentPlugin, state: PluginState) -> None:
    with contextlib.suppress(AttributeError):  # a read-only ``state`` property
        plugin.state = state


class _Checker:
    """Runs the checks of :func:`check_plugin` on one manager, collecting problems."""

    def __init__(self, manager: PluginManager, timeout: float) -> None:
        self.manager = manager
        self.timeout = timeout
        self.problems: list[str] = []
        self.checks: list[str] = []
        self.outputs: list[str | None] = []
        self.plugin_id: str | None = None
        self.expected: list[tuple[PluginState, PluginState]] = []
        self.seen: list[tuple[PluginState, PluginState]] = []
        manager.add_listener(self._record)

    def _record(self, event: KernelEvent) -> None:
        if isinstance(event, PluginEvent.StateChanged) and event.plugin_id == self.plugin_id:
            self.seen.append((event.old_state, event.new_state))

    def _ran(self, check: str) -> None:
        if check not in self.checks:
            self.checks.append(check)

    async def _call(self, what: str, call: Callable[[], Awaitable[_T]]) -> _T:
        """Await one call into plugin code under the deadline (through the runtime's own
        :func:`~mofa_kernel._runtime.trial`); a failure stops the check."""
        from ._runtime import TrialFailed, trial

        try:
            result: _T = await trial(what, call, self.timeout, returns=True)
        except TrialFailed as failed:
            if failed.timeout is not None:
                raise _Stop(f"{what} took longer than {self.timeout} s") from None
            if failed.cause is not None:
                raise _Stop(f"{what} raised {describe(failed.cause)}") from None
            raise _Stop(failed.note) from None
        return result

    # -- the steps ------------------------------------------------------------------------

    async def run(
        self,
        plugin: object,
        config: PluginConfig | None,
        companions: Iterable[object],
        inputs: Iterable[str],
        fresh: Callable[[], object] | None,
    ) -> None:
        try:
            target = instance_of(plugin)
        except Exception as exc:  # noqa: BLE001 - the author's constructor failing is the finding
            name = getattr(plugin, "__name__", type(plugin).__name__)
            raise _Stop(
                f"{name}() raised {describe(exc)}; __init__ must take no arguments"
            ) from None
        try:
            pid = register_all(self.manager, target, config, companions)
        except PluginError as exc:
            raise _Stop(f"register: {exc}") from None
        self.plugin_id = pid
        agent = self.manager.get(pid)
        self._check_metadata(agent)
        self._ran("async methods")
        self.problems.extend(_kind_problems(agent))
        try:
            await start_dependencies(self.manager, pid)
        except PluginError as exc:
            raise _Stop(
                f"dependencies: {exc}; pass the plugins it depends on as companions="
            ) from None
        await self._lifecycle(pid, agent, inputs)
        if _offers(agent, "save_state"):
            await self._round_trip(pid, agent, self._fresh(plugin, target, fresh))
        await self._wind_down(pid, agent)
        await self.manager.settle()
        self._ran("transitions")
        if self.seen != self.expected:
            self.problems.append(
                "state changes: expected "
                + ", ".join(f"{a}->{b}" for a, b in self.expected)
                + "; the kernel reported "
                + ", ".join(f"{a}->{b}" for a, b in self.seen)
            )

    def _check_metadata(self, agent: AgentPlugin) -> None:
        from ._wire import from_json, to_json

        self._ran("metadata")
        meta = agent.metadata
        if agent.plugin_id != meta.id:
            self.problems.append(
                f"plugin_id is {agent.plugin_id!r} but metadata.id is {meta.id!r}; they must match"
            )
        if agent.plugin_type != meta.plugin_type:
            self.problems.append(
                f"plugin_type is {agent.plugin_type!r} but metadata.plugin_type is "
                f"{meta.plugin_type!r}; they must match"
            )
        try:
            again = from_json(PluginMetadata, to_json(meta))
        except PluginError as exc:
            self.problems.append(f"metadata does not serialise to JSON and back: {exc}")
            return
        if again != meta:
            self.problems.append(f"metadata changes through to_json/from_json: {again!r}")

    async def _step(self, pid: str, verb: str, expected: PluginState) -> None:
        """One legal transition through the manager, which must end in ``expected``."""
        before = self.manager.state(pid)
        try:
            await getattr(self.manager, verb)(pid)
        except PluginError as exc:
            raise _Stop(f"{verb} in state {before}: {exc}") from None
        if verb != "init_plugin":
            transitions = {"load": [(before, LOADING), (LOADING, expected)]}
            self.expected += transitions.get(verb, [(before, expected)])
        self._ran("transitions")
        actual = self.manager.state(pid)
        if actual != expected:
            raise _Stop(f"{verb}: the plugin ended in state {actual}, expected {expected}")
        own = getattr(self.manager.get(pid), "state", None)
        if own != expected:
            self.problems.append(
                f"after {verb} the plugin's own state is {own}, expected {expected} (the kernel "
                "sets plugin.state; a state property needs a setter)"
            )

    async def _refused(self, pid: str, verb: str, *args: str) -> None:
        """An illegal transition: refused with InvalidStateError, and nothing changes."""
        before = self.manager.state(pid)
        try:
            await getattr(self.manager, verb)(pid, *args)
        except InvalidStateError:
            pass  # the refusal this check expects
        except PluginError as exc:
            self.problems.append(
                f"{verb} in state {before}: expected InvalidStateError, got {describe(exc)}"
            )
        else:
            self.problems.append(f"{verb} in state {before} was allowed; it must be refused")
        if self.manager.state(pid) != before:
            self.problems.append(
                f"a refused {verb} changed the state from {before} to {self.manager.state(pid)}"
            )

    async def _health(self, agent: AgentPlugin, state: PluginState) -> None:
        self._ran("health")
        try:
            answer: object = await self._call(f"health_check in state {state}", agent.health_check)
        except _Stop as stop:
            self.problems.append(str(stop))
            return
        if type(answer) is not bool:
            self.problems.append(
                f"health_check in state {state} returned {answer!r} "
                f"({type(answer).__name__}), expected True or False"
            )
        elif state == RUNNING and not answer:
            self.problems.append(
                "health_check in state Running returned False; a running plugin must be healthy"
            )

    def _stats(self, agent: AgentPlugin, state: PluginState) -> None:
        self._ran("stats")
        try:
            value: object = agent.stats()
        except Exception as exc:  # noqa: BLE001 - whatever plugin code raises is the finding
            self.problems.append(f"stats in state {state} raised {describe(exc)}")
            return
        if not isinstance(value, dict):
            self.problems.append(
                f"stats in state {state} returned {type(value).__name__}, expected a dict"
            )
            return
        problem = _json_problem(value, f"stats in state {state}")
        if problem is not None:
            self.problems.append(problem)

    async def _execute(self, pid: str, text: str) -> None:
        self._ran("execute")
        try:
            output: str | None = await self.manager.execute(pid, text)
        except PluginExecutionError as exc:
            if self.manager.state(pid).is_error:
                raise _Stop(f"execute({text!r}): {exc}") from None
            output = None  # the plugin rejected this input, as it may
        except PluginError as exc:
            raise _Stop(f"execute({text!r}): {exc}") from None
        self.outputs.append(output)

    async def _lifecycle(self, pid: str, agent: AgentPlugin, inputs: Iterable[str]) -> None:
        self._stats(agent, UNLOADED)
        await self._refused(pid, "start")
        await self._refused(pid, "execute", "")
        await self._step(pid, "load", LOADED)
        await self._health(agent, LOADED)
        self._stats(agent, LOADED)
        await self._step(pid, "init_plugin", LOADED)
        await self._step(pid, "start", RUNNING)
        await self._health(agent, RUNNING)
        for text in inputs:
            await self._execute(pid, text)
        self._stats(agent, RUNNING)
        await self._refused(pid, "start")
        await self._refused(pid, "load")
        if _offers(agent, "refresh"):
            self._ran("refresh")
            try:
                await self._call("refresh while Running", agent.refresh)  # type: ignore[attr-defined]
            except _Stop as stop:
                self.problems.append(str(stop))
            await self._health(agent, RUNNING)

    async def _wind_down(self, pid: str, agent: AgentPlugin) -> None:
        await self._step(pid, "pause", PAUSED)
        await self._health(agent, PAUSED)
        self._stats(agent, PAUSED)
        await self._refused(pid, "execute", "")
        await self._step(pid, "resume", RUNNING)
        await self._health(agent, RUNNING)
        await self._step(pid, "stop", LOADED)
        await self._health(agent, LOADED)
        await self._step(pid, "start", RUNNING)  # a stopped plugin can be started again
        await self._health(agent, RUNNING)
        await self._step(pid, "stop", LOADED)
        await self._step(pid, "unload", UNLOADED)
        self._stats(agent, UNLOADED)

    @staticmethod
    def _fresh(
        plugin: object, target: object, fresh: Callable[[], object] | None
    ) -> Callable[[], object]:
        if fresh is not None:
            return fresh
        if isinstance(plugin, type):
            return plugin
        if isinstance(target, AgentPlugin):
            return type(target)
        return lambda: target  # a module of hooks: its state lives in the module itself

    async def _round_trip(self, pid: str, agent: AgentPlugin, fresh: Callable[[], object]) -> None:
        """save_state on the running instance, restore_state on a fresh one, save again: equal."""
        from ._adapters import as_agent_plugin
        from ._context import PluginContext
        from ._settings import load_with_settings

        self._ran("state round trip")
        try:
            saved = await self._call("save_state", agent.save_state)  # type: ignore[attr-defined]
        except _Stop as stop:
            self.problems.append(str(stop))
            return
        problem = _json_problem(saved, "save_state()")
        if problem is not None:
            self.problems.append(problem)
            return
        data = json.loads(json.dumps(to_json_value(saved)))
        try:
            new = as_agent_plugin(fresh(), label=repr(pid))
        except Exception as exc:  # noqa: BLE001 - the author's constructor failing is the finding
            self.problems.append(
                f"state round trip: cannot build a fresh instance ({describe(exc)}); "
                "pass fresh= to check_plugin"
            )
            return
        if new.metadata.id != pid:
            self.problems.append(f"state round trip: the fresh instance is {new.metadata.id!r}")
            return
        manager = self.manager
        ctx = PluginContext(
            manager.agent_id,
            manager.record(pid).config,
            plugin_id=pid,
            shared_state=manager.shared_state,
            event_sink=manager.emit,
        )
        loaded = False
        try:
            _set_state(new, LOADING)
            await self._call("load of a fresh instance", lambda: load_with_settings(pid, new, ctx))
            loaded = True
            _set_state(new, LOADED)
            await self._call("init_plugin of a fresh instance", new.init_plugin)
            await self._call(
                "restore_state",
                lambda: new.restore_state(data),  # type: ignore[attr-defined]
            )
            again = await self._call(
                "save_state after restore_state",
                new.save_state,  # type: ignore[attr-defined]
            )
            problem = _json_problem(again, "save_state() after restore_state")
            if problem is not None:
                self.problems.append(problem)
            elif json.loads(json.dumps(to_json_value(again))) != data:
                self.problems.append(
                    f"state does not round-trip: save_state gave {short(data)}; after "
                    f"restore_state on a fresh instance, save_state gave "
                    f"{short(to_json_value(again))}"
                )
        except _Stop as stop:
            self.problems.append(f"state round trip: {stop}")
        finally:
            if loaded:
                try:
                    await self._call("unload of the fresh instance", new.unload)
                except _Stop as stop:
                    self.problems.append(f"state round trip: {stop}")
            _set_state(new, UNLOADED)


def _json_problem(value: object, what: str) -> str | None:
    """Why ``value`` is not JSON data, with the path of the first bad part; ``None`` if it is."""
    try:
        to_json_value(value, path="$")
    except PluginConfigError as exc:
        return f"{what} is not JSON data: {exc}"
    except RecursionError:
        return f"{what} is not JSON data: it contains itself"
    return None


async def check_plugin(
    plugin: object,
    *,
    inputs: Iterable[str] = (),
    settings: Mapping[str, object] | None = None,
    config: PluginConfig | None = None,
    companions: Iterable[object] = (),
    fresh: Callable[[], object] | None = None,
    timeout: float = 10.0,
) -> ConformanceReport:
    """Check ``plugin`` against the contract every plugin must meet; never raises for its faults.

    ``plugin`` is an ``AgentPlugin`` instance or subclass, or a module (or
    object) of hook functions. The check drives it in a fresh manager:

    - **metadata**: it is a ``PluginMetadata`` that survives the JSON wire
      format, and ``plugin_id``/``plugin_type`` agree with it;
    - **transitions**: load, init, start, pause, resume, stop, start again,
      stop and unload each succeed and end in the right state, illegal ones
      (start before load, execute while paused...) are refused and change
      nothing, and every change is reported by exactly one ``StateChanged``;
    - **health**: ``health_check`` returns a bool in every state, ``True``
      while running;
    - **stats**: ``stats()`` returns a dict of JSON data in every state;
    - **execute**: each of ``inputs`` gets a ``str``, or a
      :class:`~mofa_kernel.PluginExecutionError` that leaves the plugin running;
    - **state round trip**, for plugins with ``save_state``: the running
      instance's state goes through ``json.dumps``/``json.loads`` into
      ``restore_state`` on a fresh instance (after its ``load`` and
      ``init_plugin``, as in a hot reload), whose ``save_state`` must then
      give the same data. ``fresh`` makes that instance (default: the
      plugin's class called with no arguments; a module is its own fresh
      instance).

    ``settings`` (or ``config``) is the plugin's configuration; ``companions``
    are the plugins it depends on, each a plugin or a ``(plugin, settings)``
    pair. Every call has ``timeout`` seconds.
    """
    from ._manager import PluginManager

    manager = PluginManager(timeout=timeout)
    checker = _Checker(manager, timeout)
    async with manager:
        try:
            await checker.run(plugin, config_of(settings, config), companions, inputs, fresh)
        except _Stop as stop:
            checker.problems.append(str(stop))
    return ConformanceReport(
        plugin_id=checker.plugin_id,
        problems=tuple(dict.fromkeys(checker.problems)),  # each distinct problem once
        checks=tuple(checker.checks),
        outputs=tuple(checker.outputs),
    )


async def assert_conforms(
    plugin: object,
    *,
    inputs: Iterable[str] = (),
    settings: Mapping[str, object] | None = None,
    config: PluginConfig | None = None,
    companions: Iterable[object] = (),
    fresh: Callable[[], object] | None = None,
    timeout: float = 10.0,
) -> ConformanceReport:
    """:func:`check_plugin`, raising ``AssertionError`` with one line per problem if any."""
    __tracebackhide__ = True
    report = await check_plugin(
        plugin,
        inputs=inputs,
        settings=settings,
        config=config,
        companions=companions,
        fresh=fresh,
        timeout=timeout,
    )
    if not report.ok:
        raise AssertionError(str(report))
    return report
