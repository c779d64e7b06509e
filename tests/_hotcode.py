"""Plugin code written to disk for hot-reload tests, and waiting on the event stream.

:func:`plugin_source` writes a class-style plugin whose every lifecycle step
logs ``"<version>:<step>"`` into the kernel's shared state (key ``"log"``)
and whose answers name the version that gave them. Each step can be given
one extra line of code (to raise, to wait on a gate, to start a task).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mofa_kernel import KernelEvent, PluginManager, ReloadEvent

#: How long a test waits for an event before failing (a loaded CI machine is slow).
WAIT = 20.0

_names = itertools.count()


def plugin_source(
    plugin_id: str,
    version: str,
    *,
    header: str = "",
    construct: str = "pass",
    load: str = "pass",
    init: str = "pass",
    start: str = "pass",
    stop: str = "pass",
    execute: str = "pass",
    save: str = "pass",
    restore: str = "pass",
    footer: str = "",
) -> str:
    """The source of a plugin module; each keyword is one line of code run in that step."""
    return f"""\
from __future__ import annotations

import asyncio

from mofa_kernel import AgentPlugin, HotReloadable, PluginMetadata, PluginType
{header}
VERSION = {version!r}


def _log(plugin, what):
    if plugin.context is not None:
        plugin.context.shared_state.update("log", lambda old: [*(old or []), VERSION + ":" + what])


class Plugin(AgentPlugin, HotReloadable):
    metadata = PluginMetadata({plugin_id!r}, "Hot", PluginType.TOOL)

    def __init__(self):
        self.count = 0
        {construct}

    async def load(self, ctx):
        self.context = ctx
        _log(self, "load")
        {load}

    async def init_plugin(self):
        _log(self, "init")
        {init}

    async def start(self):
        _log(self, "start")
        {start}

    async def stop(self):
        _log(self, "stop")
        {stop}

    async def unload(self):
        _log(self, "unload")

    async def execute(self, input):
        self.count += 1
        {execute}
        return VERSION + ":" + input + ":" + str(self.count)

    async def save_state(self):
        {save}
        return {{"count": self.count}}

    async def restore_state(self, state):
        _log(self, "restore")
        {restore}
        self.count = state["count"]

    async def refresh(self):
        _log(self, "refresh")
{footer}"""


class Code:
    """A folder on ``sys.path`` holding the plugin packages of one test."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def package(self, files: dict[str, str], *, name: str | None = None) -> str:
        """Write a package (``files``: path inside it -> text); return its (unique) name."""
        name = name or f"hotpkg{os.getpid()}_{next(_names)}"
        for relative, text in files.items():
            self.write(self.root / name / relative, text)
        return name

    @staticmethod
    def write(path: Path, text: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    def forget(self) -> None:
        """Drop this test's modules from ``sys.modules``."""
        for name, module in list(sys.modules.items()):
            file = getattr(module, "__file__", None) or ""
            if file.startswith(str(self.root)):
                del sys.modules[name]


def code_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Code]:
    """Body of a ``code`` fixture: a :class:`Code` folder on ``sys.path``, cleaned up after."""
    root = tmp_path / "code"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    code = Code(root)
    yield code
    code.forget()


Predicate = Callable[[KernelEvent], bool]


def is_(variant: type, plugin_id: str | None = None, **fields: Any) -> Predicate:
    """A predicate matching one event variant (and the given field values)."""

    def matches(event: KernelEvent) -> bool:
        if not isinstance(event, variant):
            return False
        if plugin_id is not None and getattr(event, "plugin_id", None) != plugin_id:
            return False
        return all(getattr(event, key) == value for key, value in fields.items())

    return matches


class Events:
    """The manager's event stream, read in order; waits are bounded by :data:`WAIT`."""

    def __init__(self, manager: PluginManager) -> None:
        self.subscription = manager.events(maxsize=1_000_000)

    async def next(self, timeout: float = WAIT) -> KernelEvent:
        try:
            return await asyncio.wait_for(self.subscription.__anext__(), timeout)
        except asyncio.TimeoutError:
            pytest.fail(f"no event within {timeout}s")

    async def until(self, predicate: Predicate, timeout: float = WAIT) -> list[KernelEvent]:
        """Every event up to and including the first that matches ``predicate``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        seen = []
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                pytest.fail(f"no matching event within {timeout}s; saw {seen}")
            event = await self.next(remaining)
            seen.append(event)
            if predicate(event):
                return seen

    async def reload(self, plugin_id: str, timeout: float = WAIT) -> list[KernelEvent]:
        """The events of the next reload of ``plugin_id``, ReloadStarted to ReloadCompleted."""
        before = await self.until(is_(ReloadEvent.ReloadStarted, plugin_id), timeout)
        return before[-1:] + await self.until(is_(ReloadEvent.ReloadCompleted, plugin_id), timeout)

    def pending(self) -> list[KernelEvent]:
        """The events already emitted and not read yet."""
        out = []
        while (event := self.subscription.get_nowait()) is not None:
            out.append(event)
        return out


def reload_events(events: list[KernelEvent]) -> list[str]:
    """The variant names of the ReloadEvents in ``events``, in order."""
    return [event.variant for event in events if isinstance(event, ReloadEvent)]
