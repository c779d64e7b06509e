"""``mofa-kernel dev``: run the plugins with hot reload on, print every event, take commands.

Commands on stdin, one a line: ``ID INPUT`` executes ``INPUT`` on plugin
``ID`` and prints an ``ExecuteResult`` or ``ExecuteError``; ``reload ID``
reloads a plugin now (whatever the strategy) and prints a ``ReloadResult``;
``quit`` (or the end of stdin) shuts everything down. Events are printed as
they happen, one a line, each flushed. With ``--json`` every line is one
JSON object in the externally tagged form (``{"ReloadCompleted": {...}}``);
``{"Ready": {"plugins": [...]}}`` comes once the watchers are armed.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, TextIO

from ._output import EXIT_OK, Output

if TYPE_CHECKING:
    from mofa_kernel._events import KernelEvent
    from mofa_kernel._manager import PluginManager

__all__ = ["DevSession", "stdin_lines"]


async def stdin_lines(stream: TextIO) -> AsyncIterator[str]:
    """The lines of ``stream``, read in a daemon thread so the event loop never blocks on it."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def put(item: str | None) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:
            return  # the loop has closed: the session is over

    def read() -> None:
        for line in stream:
            put(line)
        put(None)

    threading.Thread(target=read, name="mofa-dev-stdin", daemon=True).start()
    while (line := await queue.get()) is not None:
        yield line


def _value(value: object) -> str:
    if isinstance(value, str) and value and not any(c.isspace() or c in "\"'=" for c in value):
        return value
    return json.dumps(value, ensure_ascii=False)


class DevSession:
    """One ``dev`` run: a manager, its events on ``out``, and the commands it is given."""

    def __init__(self, manager: PluginManager, out: Output, *, as_json: bool) -> None:
        self.manager = manager
        self.out = out
        self.as_json = as_json

    def emit(self, tag: str, fields: dict[str, Any]) -> None:
        """Print one object: ``{"Tag": {...}}`` with ``--json``, else ``Tag key=value ...``."""
        if self.as_json:
            self.out.line(json.dumps({tag: fields}, ensure_ascii=False, separators=(",", ":")))
            return
        shown = " ".join(f"{key}={_value(value)}" for key, value in fields.items())
        self.out.line(f"{tag} {shown}".rstrip())

    def event(self, event: KernelEvent) -> None:
        from mofa_kernel._wire import to_data, to_json

        if self.as_json:
            self.out.line(to_json(event))
            return
        data = to_data(event)
        assert isinstance(data, dict)
        ((tag, fields),) = data.items()
        assert isinstance(fields, dict)
        raw = getattr(event, "data", None)
        if isinstance(raw, bytes):
            fields["data"] = raw.decode("utf-8", "backslashreplace")
        self.emit(tag, fields)

    async def run(self, commands: AsyncIterator[str]) -> int:
        """Start, watch, serve ``commands`` until ``quit`` or their end, then shut down."""
        manager = self.manager
        manager.add_listener(self.event)
        try:
            report = manager.discover()
            for line in report.errors:
                self.out.error(f"warning: {line}")
            await manager.start_all()
            await manager.start_hot_reload(watch_installs=True)
            self.ready()
            async for line in commands:
                if not await self.command(line.strip()):
                    break
        finally:
            await manager.stop_hot_reload()
            await manager.shutdown()
            manager.remove_listener(self.event)
        return EXIT_OK

    def ready(self) -> None:
        plugins = self.manager.plugin_ids()
        if self.as_json:
            self.emit("Ready", {"plugins": plugins})
            return
        strategy = self.manager.hot_reload.strategy
        self.out.line(
            f"Ready: {len(plugins)} plugin(s) ({', '.join(plugins) or 'none'}), "
            f"reload strategy {strategy!r}; commands: 'ID INPUT', 'reload ID', 'quit'"
        )

    async def command(self, line: str) -> bool:
        """Carry out one command line; ``False`` when it asks to quit."""
        from mofa_kernel._errors import PluginError

        if not line:
            return True
        if line == "quit":
            return False
        head, _, rest = line.partition(" ")
        rest = rest.strip()
        if head == "reload" and rest:
            try:
                reloaded = await self.manager.reload(rest)
            except PluginError as exc:
                self.emit("ReloadResult", {"plugin_id": rest, "reloaded": False, "error": str(exc)})
            else:
                self.emit("ReloadResult", {"plugin_id": rest, "reloaded": reloaded, "error": None})
            return True
        try:
            output = await self.manager.execute(head, rest)
        except PluginError as exc:
            self.emit("ExecuteError", {"plugin_id": head, "error": str(exc)})
        else:
            self.emit("ExecuteResult", {"plugin_id": head, "output": output})
        return True
