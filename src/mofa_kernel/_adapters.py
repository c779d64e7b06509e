"""Turning what a plugin author wrote into something the manager can drive.

Class-style plugins are :class:`~mofa_kernel.AgentPlugin` instances and need
no adapter. Module-style plugins (any object carrying ``@hookimpl`` functions)
are wrapped in :class:`HookPlugin`, which presents them as an ``AgentPlugin``.
Both styles are checked against the hook specifications here, so a misspelt
hook or argument is refused at registration with a message that names it.
"""

from __future__ import annotations

import difflib
import inspect
import weakref
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Final

import attrs

from ._errors import PluginExecutionError, PluginLoadError
from ._hookspecs import PROJECT_NAME, LifecycleHooks
from ._metadata import PluginMetadata
from ._plugin import AgentPlugin, HotReloadable
from ._types import PluginState

if TYPE_CHECKING:
    from ._context import PluginContext

__all__ = [
    "HOOK_ARGUMENTS",
    "RELOAD_HOOKS",
    "HookPlugin",
    "adapt",
    "as_agent_plugin",
    "hook_problems",
    "offers",
]

_MARK: Final = f"{PROJECT_NAME}_impl"


def _spec_arguments() -> dict[str, tuple[str, ...]]:
    specs: dict[str, tuple[str, ...]] = {}
    for name, member in vars(LifecycleHooks).items():
        if callable(member) and hasattr(member, f"{PROJECT_NAME}_spec"):
            params = list(inspect.signature(member).parameters)[1:]  # drop self
            specs[name] = tuple(params)
    return specs


#: Hook name -> the argument names its specification allows.
HOOK_ARGUMENTS: Final = _spec_arguments()


def _argument_names(function: Callable[..., Any]) -> tuple[str, ...]:
    """The arguments a hook function requires (those pluggy would pass it)."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return ()
    return tuple(
        name
        for name, param in signature.parameters.items()
        if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY)
        and param.default is param.empty
    )


_ALL_ARGUMENTS: Final = frozenset(arg for args in HOOK_ARGUMENTS.values() for arg in args)


def _marked_members(obj: object) -> Iterator[tuple[str, Callable[..., Any]]]:
    """The members of ``obj`` marked with ``@hookimpl``, read without running properties."""
    names: set[str] = set()
    if isinstance(obj, type) or inspect.ismodule(obj):
        names.update(vars(obj))
    else:
        names.update(_class_marked_names(type(obj)))
        names.update(getattr(obj, "__dict__", {}))
    for name in sorted(names):
        try:
            raw = inspect.getattr_static(obj, name)
        except AttributeError:
            continue
        target = raw.__func__ if isinstance(raw, (staticmethod, classmethod)) else raw
        if callable(target) and getattr(target, _MARK, None) is not None:
            yield name, getattr(obj, name)


# One scan per class, not per instance: thousands of instances of one class are common.
# Weak keys, so that classes of hot-reloaded modules can be released.
_MARKED_BY_CLASS: weakref.WeakKeyDictionary[type, frozenset[str]] = weakref.WeakKeyDictionary()


def _class_marked_names(cls: type) -> frozenset[str]:
    cached = _MARKED_BY_CLASS.get(cls)
    if cached is not None:
        return cached
    names = set()
    for klass in cls.__mro__:
        if klass in (object, AgentPlugin, HotReloadable):
            continue
        for name, member in vars(klass).items():
            target = member.__func__ if isinstance(member, (staticmethod, classmethod)) else member
            if callable(target) and getattr(target, _MARK, None) is not None:
                names.add(name)
    _MARKED_BY_CLASS[cls] = found = frozenset(names)
    return found


def hook_problems(obj: object) -> list[str]:
    """Every misspelt hook and argument on ``obj``, one sentence each."""
    problems: list[str] = []
    for name, function in _marked_members(obj):
        if name not in HOOK_ARGUMENTS:
            close = difflib.get_close_matches(name, HOOK_ARGUMENTS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"hook {name!r} is not a mofa hook{hint}")
            continue
        allowed = HOOK_ARGUMENTS[name]
        for arg in _argument_names(function):
            if arg not in allowed:
                expected = ", ".join(allowed) if allowed else "no arguments"
                problems.append(
                    f"hook {name!r} has argument {arg!r}, which its specification does not "
                    f"have (expected: {expected})"
                )
    return problems


def has_hooks(obj: object) -> bool:
    """Whether ``obj`` carries any ``@hookimpl`` member (and so needs pluggy registration)."""
    return next(_marked_members(obj), None) is not None


class _Hook:
    """One hook implementation, called with the arguments it asked for."""

    __slots__ = ("function", "names")

    def __init__(self, function: Callable[..., Any]) -> None:
        self.function = function
        self.names = tuple(n for n in inspect.signature(function).parameters if n in _ALL_ARGUMENTS)

    def __call__(self, **arguments: Any) -> Any:
        return self.function(*[arguments[n] for n in self.names])


async def _settle(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


class HookPlugin(AgentPlugin, HotReloadable):
    """A module-style plugin presented as an :class:`~mofa_kernel.AgentPlugin`.

    ``hooks`` is the object the author wrote (usually a module). Hooks may be
    plain or ``async`` functions; missing lifecycle hooks behave like the
    ``AgentPlugin`` defaults.
    """

    def __init__(self, hooks: object, metadata: PluginMetadata) -> None:
        self.hooks = hooks
        self._metadata = metadata
        self._impls = {name: _Hook(fn) for name, fn in _marked_members(hooks)}

    @property
    def metadata(self) -> PluginMetadata:
        return self._metadata

    def implements(self, hook: str) -> bool:
        return hook in self._impls

    def __repr__(self) -> str:
        return f"HookPlugin({self._metadata.id!r}, hooks={self.hooks!r})"

    async def load(
        self, ctx: PluginContext
    ) -> Any:  # the hook's value: the manager checks it is None
        self.context = ctx
        return await self._call("load", ctx=ctx)

    async def init_plugin(self) -> Any:  # the hook's value: the manager checks it is None
        return await self._call("init_plugin")

    async def start(self) -> Any:  # the hook's value: the manager checks it is None
        return await self._call("start")

    async def pause(self) -> Any:  # the hook's value: the manager checks it is None
        return await self._call("pause")

    async def resume(self) -> Any:  # the hook's value: the manager checks it is None
        return await self._call("resume")

    async def stop(self) -> Any:  # the hook's value: the manager checks it is None
        return await self._call("stop")

    async def unload(self) -> Any:  # the hook's value: the manager checks it is None
        return await self._call("unload")

    async def execute(self, input: str) -> str:
        hook = self._impls.get("execute")
        if hook is None:
            raise PluginExecutionError(
                f"plugin {self._metadata.id!r} does not implement the execute hook",
                plugin_id=self._metadata.id,
                hook="execute",
            )
        result: str = await _settle(hook(input=input))
        return result

    async def health_check(self) -> bool:
        if "health_check" not in self._impls:
            return self.state == PluginState.RUNNING
        result: bool = await _settle(self._impls["health_check"]())
        return result

    def stats(self) -> dict[str, Any]:
        if "stats" not in self._impls:
            return {}
        result: dict[str, Any] = self._impls["stats"]()
        return result

    async def refresh(self) -> Any:  # the hook's value: the manager checks it is None
        return await self._call("refresh")

    async def save_state(self) -> object:
        return await self._call("save_state")

    async def restore_state(
        self, state: object
    ) -> Any:  # the hook's value: the manager checks it is None
        return await self._call("restore_state", state=state)

    async def _call(self, name: str, **arguments: Any) -> Any:
        hook = self._impls.get(name)
        if hook is None:
            return None
        return await _settle(hook(**arguments))


#: The optional hooks of hot reload, which a plugin may or may not offer.
RELOAD_HOOKS: Final = ("refresh", "save_state", "restore_state")


def is_isolated(plugin: object) -> bool:
    """Whether ``plugin`` is an isolated plugin's proxy, told without importing its module."""
    return bool(getattr(type(plugin), "mofa_isolated", False))


def offers(plugin: object, hook: str) -> bool:
    """Whether ``plugin`` implements ``hook`` (one of :data:`RELOAD_HOOKS`).

    A module of hooks and an isolated plugin's proxy (which stands for a plugin
    in a worker) answer for themselves; any other plugin offers what it defines.
    """
    if isinstance(plugin, HookPlugin) or is_isolated(plugin):
        return bool(plugin.implements(hook))  # type: ignore[attr-defined]
    return callable(getattr(plugin, hook, None))


def as_agent_plugin(obj: object, *, label: str) -> AgentPlugin:
    """Return ``obj`` as a driveable plugin, or raise :class:`PluginLoadError` saying why not.

    ``label`` names the plugin in messages (its id or entry point).
    """
    return adapt(obj, label=label)[0]


def adapt(obj: object, *, label: str) -> tuple[AgentPlugin, PluginMetadata]:
    """``obj`` as a driveable plugin, and its metadata, read exactly once.

    The metadata returned is the kernel's own copy: what the plugin does to
    its ``metadata`` afterwards is not seen. Raises :class:`PluginLoadError`
    saying why ``obj`` cannot be a plugin (``label`` names it).
    """
    problems = hook_problems(obj)
    if problems:
        raise PluginLoadError(
            "\n".join(f"plugin {label}: {problem}" for problem in problems), plugin_id=None
        )
    if isinstance(obj, AgentPlugin):
        try:
            metadata = obj.metadata
        except AttributeError as exc:
            raise PluginLoadError(
                f"plugin {label}: {type(obj).__name__} has no metadata; give it a "
                "`metadata` class attribute, property or instance attribute"
            ) from exc
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            raise PluginLoadError(
                f"plugin {label}: reading its metadata raised {_fault_text(exc)}"
            ) from exc
        return obj, _own_copy(metadata, label, "its metadata is")
    if isinstance(obj, type) and issubclass(obj, AgentPlugin):
        raise PluginLoadError(
            f"plugin {label}: register an instance of {obj.__name__}, not the class itself"
        )
    marked = dict(_marked_members(obj))
    if not marked:
        raise PluginLoadError(
            f"plugin {label}: {type(obj).__name__} is neither an AgentPlugin nor an object "
            "with @hookimpl functions"
        )
    if "plugin_metadata" not in marked:
        raise PluginLoadError(f"plugin {label}: the required hook 'plugin_metadata' is missing")
    try:
        metadata = marked["plugin_metadata"]()
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        raise PluginLoadError(
            f"plugin {label}: plugin_metadata() raised {_fault_text(exc)}"
        ) from exc
    if inspect.isawaitable(metadata):
        _close(metadata)
        raise PluginLoadError(f"plugin {label}: plugin_metadata() must be a plain function")
    metadata = _own_copy(metadata, label, "plugin_metadata() returned")
    return HookPlugin(obj, metadata), metadata


def _fault_text(exc: BaseException) -> str:
    """``Name: message`` for any exception, also one whose ``str()`` raises."""
    try:
        message = str(exc)
    except BaseException:  # noqa: BLE001 - a plugin's __str__ may raise anything
        message = "<str() of the exception raised>"
    return f"{type(exc).__name__}: {message}"


def _own_copy(metadata: object, label: str, what: str) -> PluginMetadata:
    """A validated copy of ``metadata``, the plugin's own object left alone."""
    checked = _check_metadata(metadata, label, what)
    try:
        return attrs.evolve(checked)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        raise PluginLoadError(f"plugin {label}: {what} invalid: {_fault_text(exc)}") from exc


def _close(value: object) -> None:
    if inspect.iscoroutine(value):
        value.close()  # refused unawaited: no "never awaited" warning later


def _check_metadata(metadata: object, label: str, what: str) -> PluginMetadata:
    if not isinstance(metadata, PluginMetadata):
        _close(metadata)
        raise PluginLoadError(
            f"plugin {label}: {what} {type(metadata).__name__}, expected PluginMetadata"
        )
    return metadata
