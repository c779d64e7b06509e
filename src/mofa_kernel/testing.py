"""Testing mofa-kernel plugins: pytest fixtures and a conformance check.

mofa-kernel registers this module as a pytest plugin (entry-point group
``pytest11``, plugin name ``mofa_kernel``), so wherever mofa-kernel is
installed a test can ask for these fixtures by name:

``mofa_manager``
    An isolated :class:`~mofa_kernel.PluginManager`, shut down after the test.
    It is an async fixture: it needs pytest-asyncio.
``mofa_manager_factory``
    Makes isolated managers, for tests that run their own event loop.
``mofa_register``
    Registers a plugin (an instance, an ``AgentPlugin`` subclass or a module of
    hooks) on ``mofa_manager``, with its settings.
``mofa_entry_points``
    An :class:`EntryPointSandbox`: entry points that discovery sees as
    installed, without installing anything.
``mofa_lifecycle``
    :func:`run_lifecycle`: drives a plugin through its whole lifecycle.
``mofa_isolation``
    What the others stand on: the kernel's environment variables are cleared
    and autoload is off (``MOFA_DISABLE_PLUGIN_AUTOLOAD=1``), so
    ``discover()`` imports nothing that the test did not ask for.

Everything a fixture changes (environment, ``sys.path``, modules imported
from fake distributions) is put back when the test ends. :func:`check_plugin`
and :func:`assert_conforms` check one plugin against the contract that every
plugin must meet. ``pytest -p no:mofa_kernel`` switches the pytest plugin off.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import json
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar

import attrs
import pytest

from ._errors import InvalidStateError, PluginConfigError, PluginError, PluginExecutionError
from ._events import KernelEvent, PluginEvent
from ._metadata import PluginConfig, PluginMetadata, to_json_value
from ._plugin import AgentPlugin
from ._types import PluginState

if TYPE_CHECKING:
    from ._manager import PluginManager

__all__ = [
    "ConformanceReport",
    "EntryPointSandbox",
    "LifecycleRun",
    "LifecycleRunner",
    "ManagerFactory",
    "RegisterPlugin",
    "assert_conforms",
    "check_plugin",
    "run_lifecycle",
]

_T = TypeVar("_T")

#: The kernel's own environment variables, cleared for every isolated test.
_KERNEL_VARIABLES: Final = ("MOFA_CONFIG", "MOFA_PLUGINS", "MOFA_TRACE")
_AUTOLOAD_OFF: Final = "MOFA_DISABLE_PLUGIN_AUTOLOAD"
_ONLY: Final = "MOFA_PLUGINS"
_ENTRY_POINT_NAME: Final = re.compile(r"[\w.-]+", re.ASCII)
_DISTRIBUTION_NAME: Final = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?", re.ASCII)
_ENTRY_POINT_VALUE: Final = re.compile(r"[\w.]+(:[\w.]+)?", re.ASCII)

UNLOADED: Final = PluginState.UNLOADED
LOADING: Final = PluginState.LOADING
LOADED: Final = PluginState.LOADED
RUNNING: Final = PluginState.RUNNING
PAUSED: Final = PluginState.PAUSED


# -- plugins, settings and companions as the author gives them ------------------------------


def _instance(plugin: object) -> object:
    """An ``AgentPlugin`` subclass is instantiated with no arguments; anything else is kept."""
    if isinstance(plugin, type) and issubclass(plugin, AgentPlugin):
        return plugin()
    return plugin


def _config(
    settings: Mapping[str, object] | PluginConfig | None, config: PluginConfig | None = None
) -> PluginConfig | None:
    if settings is not None and config is not None:
        raise TypeError("give settings= or config=, not both")
    if isinstance(settings, PluginConfig):
        return settings
    if settings is not None:
        return PluginConfig(dict(settings))
    return config


def _companion(item: object) -> tuple[object, PluginConfig | None]:
    """A companion is a plugin, or a ``(plugin, settings-or-config)`` pair."""
    if isinstance(item, tuple):
        if len(item) != 2:
            raise TypeError("a companion is a plugin or a (plugin, settings) pair")
        plugin, settings = item
        return _instance(plugin), _config(settings)
    return _instance(item), None


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _short(data: object, limit: int = 200) -> str:
    text = json.dumps(data, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _register_all(
    manager: PluginManager,
    plugin: object,
    config: PluginConfig | None,
    companions: Iterable[object],
) -> str:
    for item in companions:
        companion, companion_config = _companion(item)
        manager.register(companion, config=companion_config)
    return manager.register(_instance(plugin), config=config)


async def _start_dependencies(manager: PluginManager, plugin_id: str) -> None:
    """Bring up, in order, the registered plugins that start before ``plugin_id``."""
    problem = manager.dependency_error(plugin_id)
    if problem is not None:
        raise problem
    order = manager.start_order()
    for other in order[: order.index(plugin_id)]:
        await manager.load(other)
        await manager.start(other)


# -- driving a plugin ------------------------------------------------------------------------


@attrs.frozen
class LifecycleRun:
    """What :func:`run_lifecycle` saw.

    ``outputs`` holds execute's answers, one per input; ``transitions`` every
    ``(old, new)`` state change of the plugin, in order; ``events`` every event
    the kernel emitted; ``healthy`` the health check while running; ``stats``
    the plugin's stats after the inputs.
    """

    plugin_id: str
    outputs: tuple[str, ...]
    transitions: tuple[tuple[PluginState, PluginState], ...]
    events: tuple[KernelEvent, ...]
    healthy: bool
    stats: dict[str, Any]


async def run_lifecycle(
    plugin: object,
    *,
    inputs: Iterable[str] = (),
    settings: Mapping[str, object] | None = None,
    config: PluginConfig | None = None,
    companions: Iterable[object] = (),
    timeout: float = 10.0,
) -> LifecycleRun:
    """Drive ``plugin`` through its whole lifecycle in a fresh manager and report what happened.

    The plugin is loaded, initialised, started, health-checked, given each of
    ``inputs``, paused, resumed, stopped and unloaded. ``companions`` are the
    plugins it depends on (each a plugin or a ``(plugin, settings)`` pair);
    they are started first and shut down last. A failure raises the kernel's
    error (:class:`~mofa_kernel.PluginError`), after everything is shut down.
    """
    from ._manager import PluginManager

    events: list[KernelEvent] = []
    manager = PluginManager(timeout=timeout)
    manager.add_listener(events.append)
    async with manager:
        pid = _register_all(manager, plugin, _config(settings, config), companions)
        await _start_dependencies(manager, pid)
        await manager.load(pid)
        await manager.init_plugin(pid)
        await manager.start(pid)
        healthy = (await manager.health_check())[pid]
        outputs = tuple([await manager.execute(pid, text) for text in inputs])
        stats = (await manager.stats())[pid]
        for step in (manager.pause, manager.resume, manager.stop, manager.unload):
            await step(pid)
        await manager.settle()
    transitions = tuple(
        (event.old_state, event.new_state)
        for event in events
        if isinstance(event, PluginEvent.StateChanged) and event.plugin_id == pid
    )
    return LifecycleRun(pid, outputs, transitions, tuple(events), healthy, stats)


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
        """Await one call into plugin code under the deadline; a failure stops the check."""
        import asyncio

        try:
            return await asyncio.wait_for(call(), self.timeout)
        except asyncio.TimeoutError:
            raise _Stop(f"{what} took longer than {self.timeout} s") from None
        except Exception as exc:  # noqa: BLE001 - whatever plugin code raises is the finding
            raise _Stop(f"{what} raised {_describe(exc)}") from None

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
            target = _instance(plugin)
        except Exception as exc:  # noqa: BLE001 - the author's constructor failing is the finding
            name = getattr(plugin, "__name__", type(plugin).__name__)
            raise _Stop(
                f"{name}() raised {_describe(exc)}; __init__ must take no arguments"
            ) from None
        try:
            pid = _register_all(self.manager, target, config, companions)
        except PluginError as exc:
            raise _Stop(f"register: {exc}") from None
        self.plugin_id = pid
        agent = self.manager.get(pid)
        self._check_metadata(agent)
        try:
            await _start_dependencies(self.manager, pid)
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
                f"{verb} in state {before}: expected InvalidStateError, got {_describe(exc)}"
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
            self.problems.append(f"stats in state {state} raised {_describe(exc)}")
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
                f"state round trip: cannot build a fresh instance ({_describe(exc)}); "
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
            await self._call("load of a fresh instance", lambda: new.load(ctx))
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
                    f"state does not round-trip: save_state gave {_short(data)}; after "
                    f"restore_state on a fresh instance, save_state gave "
                    f"{_short(to_json_value(again))}"
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
            await checker.run(plugin, _config(settings, config), companions, inputs, fresh)
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


# -- fake installed distributions ------------------------------------------------------------


def _entry_point_value(target: object) -> str:
    if isinstance(target, str):
        if not _ENTRY_POINT_VALUE.fullmatch(target):
            raise ValueError(f"entry point value {target!r}: expected 'module' or 'module:attr'")
        return target
    if inspect.ismodule(target):
        return target.__name__
    module = getattr(target, "__module__", None)
    qualname = getattr(target, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str):
        raise TypeError(
            f"cannot name {target!r} in an entry point: give a class, a function, a module "
            "or a 'module:attr' string"
        )
    if "<locals>" in qualname:
        raise ValueError(
            f"{qualname} is defined inside a function; an entry point can only name "
            "what a module defines at its top level"
        )
    return f"{module}:{qualname}"


def _inside(path: str, root: Path) -> bool:
    try:
        return Path(path).resolve().is_relative_to(root)
    except (OSError, ValueError):
        return False


class EntryPointSandbox:
    """Entry points that ``discover()`` sees as installed, without installing anything.

    Each distribution is written as a ``.dist-info`` folder (``METADATA``,
    ``entry_points.txt``, ``RECORD``) in a temporary folder put on
    ``sys.path``, which ``importlib.metadata`` reads exactly as it reads what
    pip installs. Discovery then loads the plugins this sandbox added or
    allowed, and no other (``MOFA_PLUGINS`` names exactly those). When the
    test ends, ``sys.path`` and the environment are restored and the modules
    imported from the sandbox are removed from ``sys.modules``.
    """

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = root.resolve()
        self._monkeypatch = monkeypatch
        self._allowed: set[str] = set()
        self._on_path = False
        self.root.mkdir(parents=True, exist_ok=True)

    def add(
        self,
        plugin_id: str,
        target: object,
        *,
        distribution: str | None = None,
        version: str = "1.0",
        files: Mapping[str, str] | None = None,
        requires: Iterable[str] = ("mofa-kernel",),
    ) -> Path:
        """Declare plugin ``plugin_id`` as an installed entry point; return its dist-info folder.

        ``target`` is what the entry point names: a ``"module:attr"`` string,
        or a class, factory function or module defined at a module's top
        level. ``files`` maps paths (relative to the sandbox, which is on
        ``sys.path``) to the text of modules to write beside it, for
        plugins that exist only in the test. The distribution is called
        ``distribution`` (default ``fake-<plugin_id>``).
        """
        name = distribution if distribution is not None else f"fake-{plugin_id}"
        return self.add_distribution(
            name, {plugin_id: target}, version=version, files=files, requires=requires
        )

    def add_distribution(
        self,
        name: str,
        plugins: Mapping[str, object],
        *,
        version: str = "1.0",
        files: Mapping[str, str] | None = None,
        requires: Iterable[str] = ("mofa-kernel",),
    ) -> Path:
        """Declare a distribution with several plugins (id -> target, as for :meth:`add`)."""
        lines = []
        for plugin_id, target in plugins.items():
            if not _ENTRY_POINT_NAME.fullmatch(plugin_id):
                raise ValueError(
                    f"plugin id {plugin_id!r}: use letters, digits, '_', '.' and '-' only"
                )
            lines.append(f"{plugin_id} = {_entry_point_value(target)}\n")
        if not _DISTRIBUTION_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a valid distribution name")
        if not re.fullmatch(r"[\w.+!-]+", version, re.ASCII):
            raise ValueError(f"{version!r} is not a valid version")
        dist_info = self.root / f"{re.sub(r'[-_.]+', '_', name)}-{version}.dist-info"
        if dist_info.exists():
            raise ValueError(f"distribution {name!r} {version} was already added")
        written = [self._write_file(relative, text) for relative, text in (files or {}).items()]
        dist_info.mkdir()
        metadata = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
        metadata += [f"Requires-Dist: {requirement}" for requirement in requires]
        (dist_info / "METADATA").write_text("\n".join(metadata) + "\n", encoding="utf-8")
        (dist_info / "entry_points.txt").write_text(
            "[mofa.plugins]\n" + "".join(lines), encoding="utf-8"
        )
        record = [*written, f"{dist_info.name}/METADATA", f"{dist_info.name}/entry_points.txt"]
        record.append(f"{dist_info.name}/RECORD")
        (dist_info / "RECORD").write_text("".join(f"{r},,\n" for r in record), encoding="utf-8")
        if not self._on_path:
            self._monkeypatch.syspath_prepend(str(self.root))
            self._on_path = True
        importlib.invalidate_caches()
        self.use_installed(*plugins)
        return dist_info

    def _write_file(self, relative: str, text: str) -> str:
        target = (self.root / relative).resolve()
        if Path(relative).is_absolute() or not target.is_relative_to(self.root):
            raise ValueError(f"{relative!r} is not a path inside the sandbox")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        return target.relative_to(self.root).as_posix()

    def use_installed(self, *plugin_ids: str) -> None:
        """Let ``discover()`` load these plugin ids from what is really installed, too."""
        self._allowed.update(plugin_ids)
        self._monkeypatch.delenv(_AUTOLOAD_OFF, raising=False)
        self._monkeypatch.setenv(_ONLY, ",".join(sorted(self._allowed)))

    def close(self) -> None:
        """Forget the modules imported from the sandbox (the fixture calls this)."""
        for name, module in list(sys.modules.items()):
            namespace = getattr(module, "__dict__", None)
            if not isinstance(namespace, dict):
                continue
            places = [namespace.get("__file__")]
            with contextlib.suppress(TypeError):
                places += list(namespace.get("__path__") or ())
            if any(isinstance(p, str) and _inside(p, self.root) for p in places):
                del sys.modules[name]
        importlib.invalidate_caches()


# -- the fixtures ----------------------------------------------------------------------------


class ManagerFactory(Protocol):
    """The type of ``mofa_manager_factory``: makes an isolated manager."""

    def __call__(self, **options: Any) -> PluginManager: ...


class RegisterPlugin(Protocol):
    """The type of ``mofa_register``: registers a plugin on ``mofa_manager``, returns its id."""

    def __call__(
        self,
        plugin: object,
        *,
        settings: Mapping[str, object] | None = None,
        config: PluginConfig | None = None,
        timeout: float | None = None,
    ) -> str: ...


class LifecycleRunner(Protocol):
    """The type of ``mofa_lifecycle``: :func:`run_lifecycle`."""

    def __call__(
        self,
        plugin: object,
        *,
        inputs: Iterable[str] = (),
        settings: Mapping[str, object] | None = None,
        config: PluginConfig | None = None,
        companions: Iterable[object] = (),
        timeout: float = 10.0,
    ) -> Awaitable[LifecycleRun]: ...


@pytest.fixture
def mofa_isolation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Clear the kernel's environment variables and switch autoload off, for this test only."""
    for name in _KERNEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(_AUTOLOAD_OFF, "1")


@pytest.fixture
def mofa_manager_factory(mofa_isolation: None) -> ManagerFactory:
    """Make isolated :class:`~mofa_kernel.PluginManager` objects (keyword arguments as for it)."""
    from ._manager import PluginManager

    def make(**options: Any) -> PluginManager:
        return PluginManager(**options)

    return make


async def _mofa_manager(mofa_manager_factory: ManagerFactory) -> AsyncIterator[PluginManager]:
    """An isolated :class:`~mofa_kernel.PluginManager`, shut down when the test ends."""
    async with mofa_manager_factory() as manager:
        yield manager


def _async_fixture(function: Callable[..., AsyncIterator[_T]], name: str) -> Any:
    """``function`` as a pytest-asyncio fixture, or one that says pytest-asyncio is missing."""
    try:
        from pytest_asyncio import fixture as asyncio_fixture
    except ImportError:

        def needs_pytest_asyncio() -> None:
            pytest.fail(
                f"the {name} fixture is async and needs pytest-asyncio (pip install "
                "pytest-asyncio); without it, use mofa_manager_factory and asyncio.run",
                pytrace=False,
            )

        needs_pytest_asyncio.__doc__ = function.__doc__
        return pytest.fixture(needs_pytest_asyncio, name=name)
    return asyncio_fixture(function, name=name)


mofa_manager = _async_fixture(_mofa_manager, "mofa_manager")


@pytest.fixture
def mofa_register(mofa_manager: PluginManager) -> RegisterPlugin:
    """Register a plugin on ``mofa_manager``: an instance, an AgentPlugin subclass or hooks."""

    def register(
        plugin: object,
        *,
        settings: Mapping[str, object] | None = None,
        config: PluginConfig | None = None,
        timeout: float | None = None,
    ) -> str:
        return mofa_manager.register(
            _instance(plugin), config=_config(settings, config), timeout=timeout
        )

    return register


@pytest.fixture
def mofa_lifecycle(mofa_isolation: None) -> LifecycleRunner:
    """:func:`run_lifecycle`: drive a plugin through its whole lifecycle in a fresh manager."""
    return run_lifecycle


@pytest.fixture
def mofa_entry_points(
    mofa_isolation: None,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[EntryPointSandbox]:
    """An :class:`EntryPointSandbox`: fake installed entry points, undone after the test."""
    sandbox = EntryPointSandbox(tmp_path_factory.mktemp("mofa-site"), monkeypatch)
    yield sandbox
    sandbox.close()
