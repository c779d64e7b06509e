"""Plugins that misbehave on purpose: one hook, one kind of fault, in either plugin style.

A :class:`Fault` says which hook misbehaves and how; :func:`faulty_plugin`
builds a class-style plugin or a module of hook functions around it. Every
other hook behaves. :class:`Steady` is a plugin that always behaves, for the
dependents and bystanders of a faulty one.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
import time
import types
from collections.abc import Callable
from typing import Any, Final

from mofa_kernel import (
    AgentPlugin,
    PluginContext,
    PluginMetadata,
    PluginState,
    PluginType,
    hookimpl,
)

__all__ = [
    "BLOCK_LIMIT",
    "BLOCK_SECONDS",
    "FAULTS",
    "FAULTY_ID",
    "FAULT_TITLES",
    "HOOKS",
    "STYLES",
    "TIMEOUT",
    "WRONG_VALUES",
    "Fault",
    "InjectedFault",
    "Steady",
    "fault_words",
    "faulty_plugin",
    "hook_word",
]

#: Every hook of the lifecycle, in the order the matrix shows them.
HOOKS: Final = (
    "plugin_metadata",
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
)
#: Every kind of fault, in the order the matrix shows them.
FAULTS: Final = (
    "raise",
    "hang",
    "cancel",
    "wrong_type",
    "block",
    "keyboard_interrupt",
    "system_exit",
)
FAULT_TITLES: Final = {
    "raise": "raises an Exception",
    "hang": "hangs past its timeout",
    "cancel": "raises CancelledError",
    "wrong_type": "returns the wrong type",
    "block": "blocks the event loop",
    "keyboard_interrupt": "raises KeyboardInterrupt",
    "system_exit": "raises SystemExit",
}
STYLES: Final = ("class", "module")

FAULTY_ID: Final = "faulty"
#: The faulty plugin's deadline, in seconds.
TIMEOUT: Final = 0.2
#: A plugin call holding the event loop longer than this is a fault (the manager's block_limit).
BLOCK_LIMIT: Final = 0.2
#: How long a blocking hook holds the event loop: well past the block limit and the deadline.
BLOCK_SECONDS: Final = 0.5

#: What each hook returns when its fault is "returns the wrong type".
WRONG_VALUES: Final[dict[str, object]] = {
    "plugin_metadata": {"id": FAULTY_ID},
    "load": 42,
    "init_plugin": 42,
    "start": 42,
    "pause": 42,
    "resume": 42,
    "stop": 42,
    "unload": 42,
    "execute": 42,
    "health_check": "yes",
    "stats": ["not", "a", "dict"],
}

METADATA: Final = PluginMetadata(FAULTY_ID, "Faulty", PluginType.TOOL)


class InjectedFault(Exception):
    """The exception a hook raises when its fault is "raises an Exception"."""


async def _forever() -> None:
    await asyncio.Event().wait()


class Fault:
    """One hook misbehaving in one way; every other hook returns its normal value.

    A fault the kernel passes on to the host strikes once, as a Ctrl-C or a
    cancellation does: KeyboardInterrupt, and CancelledError on Python 3.10.
    Every other fault strikes on each call of its hook.
    """

    def __init__(self, hook: str, kind: str) -> None:
        if hook not in HOOKS or kind not in FAULTS:
            raise ValueError(f"no such cell: {hook} x {kind}")
        self.hook = hook
        self.kind = kind
        self.once = kind == "keyboard_interrupt" or (
            kind == "cancel" and sys.version_info < (3, 11)
        )
        self.calls: list[str] = []
        self.strikes = 0

    def fire(self, hook: str, normal: object) -> Any:
        """What ``hook`` returns (or raises): ``normal`` unless it is the faulty hook.

        A hang is returned as an awaitable that never completes: a hook may be
        plain or async, and the kernel awaits whatever awaitable it gets.
        """
        self.calls.append(hook)
        if hook != self.hook or (self.once and self.strikes):
            return normal
        self.strikes += 1
        kind = self.kind
        if kind == "raise":
            raise InjectedFault(f"{hook} broke on purpose")
        if kind == "hang":
            return _forever()
        if kind == "cancel":
            raise asyncio.CancelledError
        if kind == "wrong_type":
            return WRONG_VALUES[hook]
        if kind == "block":
            time.sleep(BLOCK_SECONDS)
            return normal
        if kind == "keyboard_interrupt":
            raise KeyboardInterrupt
        raise SystemExit(f"{hook} called sys.exit")

    async def fire_async(self, hook: str, normal: object) -> Any:
        value = self.fire(hook, normal)
        if inspect.isawaitable(value):
            return await value
        return value


class _FaultyClass(AgentPlugin):
    """A class-style plugin whose hooks all go through one :class:`Fault`."""

    def __init__(self, fault: Fault) -> None:
        self.fault = fault
        self.served = 0

    @property
    def metadata(self) -> PluginMetadata:
        value: PluginMetadata = self.fault.fire("plugin_metadata", METADATA)
        return value

    async def load(self, ctx: PluginContext) -> Any:
        self.context = ctx
        return await self.fault.fire_async("load", None)

    async def init_plugin(self) -> Any:
        return await self.fault.fire_async("init_plugin", None)

    async def start(self) -> Any:
        return await self.fault.fire_async("start", None)

    async def pause(self) -> Any:
        return await self.fault.fire_async("pause", None)

    async def resume(self) -> Any:
        return await self.fault.fire_async("resume", None)

    async def stop(self) -> Any:
        return await self.fault.fire_async("stop", None)

    async def unload(self) -> Any:
        return await self.fault.fire_async("unload", None)

    async def execute(self, input: str) -> Any:
        self.served += 1
        return await self.fault.fire_async("execute", f"{FAULTY_ID}:{input}")

    async def health_check(self) -> Any:
        return await self.fault.fire_async("health_check", self.state == PluginState.RUNNING)

    def stats(self) -> Any:
        return self.fault.fire("stats", {"served": self.served})


def _module_plugin(fault: Fault) -> types.ModuleType:
    """A module of plain hook functions (a hang returns a never-finishing awaitable)."""
    module = types.ModuleType(f"faulty_{fault.hook}_{fault.kind}")

    def plugin_metadata() -> Any:
        return fault.fire("plugin_metadata", METADATA)

    def load(ctx: PluginContext) -> Any:
        return fault.fire("load", None)

    def init_plugin() -> Any:
        return fault.fire("init_plugin", None)

    def start() -> Any:
        return fault.fire("start", None)

    def pause() -> Any:
        return fault.fire("pause", None)

    def resume() -> Any:
        return fault.fire("resume", None)

    def stop() -> Any:
        return fault.fire("stop", None)

    def unload() -> Any:
        return fault.fire("unload", None)

    def execute(input: str) -> Any:
        return fault.fire("execute", f"{FAULTY_ID}:{input}")

    def health_check() -> Any:
        return fault.fire("health_check", True)

    def stats() -> Any:
        return fault.fire("stats", {})

    hooks: tuple[Callable[..., Any], ...] = (
        plugin_metadata, load, init_plugin, start, pause, resume, stop, unload,
        execute, health_check, stats,
    )  # fmt: skip
    for function in hooks:
        setattr(module, function.__name__, hookimpl(function))
    return module


def faulty_plugin(style: str, fault: Fault) -> object:
    """Plugin ``faulty`` in ``style`` ("class" or "module"), misbehaving as ``fault`` says."""
    if style == "class":
        return _FaultyClass(fault)
    if style == "module":
        return _module_plugin(fault)
    raise ValueError(f"no such plugin style: {style}")


def hook_word(style: str, hook: str) -> str:
    """The word an error message uses for ``hook``: a class-style plugin has a
    ``metadata`` attribute where a module has a ``plugin_metadata`` hook."""
    return "metadata" if hook == "plugin_metadata" and style == "class" else hook


def fault_words(style: str, hook: str, kind: str) -> tuple[str, ...]:
    """Words the plugin's error message must contain to name the fault."""
    if hook == "plugin_metadata":
        # Refused at registration: the adapter says what it got instead of metadata.
        refused = {
            "hang": ("coroutine",) if style == "class" else ("must be a plain function",),
            "wrong_type": ("dict",),
        }
        if kind in refused:
            return refused[kind]
    words: dict[str, tuple[str, ...]] = {
        "raise": ("InjectedFault", f"{hook} broke on purpose"),
        "hang": (f"timed out after {TIMEOUT:g}s",),
        "cancel": ("CancelledError",),
        "wrong_type": (f"returned {type(WRONG_VALUES[hook]).__name__}",),
        "block": ("block",),
        "system_exit": ("SystemExit", f"{hook} called sys.exit"),
        "keyboard_interrupt": (),
    }
    return words[kind]


class Steady(AgentPlugin):
    """A plugin that always behaves; it counts what it served."""

    def __init__(self, plugin_id: str, *dependencies: str) -> None:
        self.metadata = PluginMetadata(
            plugin_id, plugin_id.title(), PluginType.TOOL, dependencies=dependencies
        )
        self.served = 0
        self.steps: list[str] = []

    async def start(self) -> None:
        self.steps.append("start")

    async def stop(self) -> None:
        self.steps.append("stop")

    async def unload(self) -> None:
        self.steps.append("unload")

    async def execute(self, input: str) -> str:
        self.served += 1
        return f"{self.metadata.id}:{input}"
