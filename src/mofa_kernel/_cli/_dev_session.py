"""``mofa-kernel dev``: run the plugins with hot reload on, print every event, take commands.

Commands on stdin, one a line: ``ID INPUT`` executes ``INPUT`` on plugin
``ID`` and prints an ``ExecuteResult`` or ``ExecuteError``; ``reload ID``
reloads a plugin now (whatever the strategy) and prints a ``ReloadResult``;
``list`` prints each plugin and its state, ``status`` the reload settings as
well, ``help`` the commands; ``quit`` (or the end of stdin) shuts everything
down. Events are printed as they happen, one a line, each flushed; durations
as milliseconds or seconds, strategies by name. With ``--json`` every line is one
JSON object in the externally tagged form (``{"ReloadCompleted": {...}}``);
``{"Ready": {"plugins": [...]}}`` comes once the watchers are armed.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Final, TextIO

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


#: What ``help`` prints, one command a line.
COMMANDS: Final = (
    "ID INPUT     execute INPUT on plugin ID and print the output",
    "reload ID    reload plugin ID now, whatever the strategy",
    "list         every plugin and its state",
    "status       the reload strategy and settings, and every plugin's state",
    "help         these commands",
    "quit         stop and unload everything, then exit (as does the end of input)",
    "mofa.toml is read once, when dev starts: restart dev to apply edits to it.",
)


def _value(value: object) -> str:
    if isinstance(value, str) and value and not any(c.isspace() or c in "\"'=" for c in value):
        return value
    return json.dumps(value, ensure_ascii=False)


def seconds_text(seconds: float) -> str:
    """A duration as people read it: ``12ms`` below a second, else ``1.5s``."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms" if seconds >= 0.001 else "<1ms"
    return f"{seconds:.3g}s"


def strategy_text(strategy: object) -> str:
    """``debounced(1s)``, ``immediate``, ``manual`` or ``on_idle``, as mofa.toml spells them."""
    variant = str(getattr(strategy, "variant", strategy))
    if variant == "Debounced":
        return f"debounced({seconds_text(float(getattr(strategy, 'delay', 0.0)))})"
    return {"OnIdle": "on_idle"}.get(variant, variant.lower())


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
        duration = fields.get("duration")
        if isinstance(duration, (int, float)):
            fields["duration"] = seconds_text(float(duration))
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
        strategy = strategy_text(self.manager.hot_reload.strategy)
        self.out.line(
            f"Ready: {len(plugins)} plugin(s) ({', '.join(plugins) or 'none'}), "
            f"reload strategy {strategy}; type 'help' for the commands"
        )

    def plugins(self) -> list[dict[str, Any]]:
        from mofa_kernel._wire import to_data

        return [
            {"plugin_id": pid, "state": to_data(self.manager.state(pid))}
            for pid in self.manager.plugin_ids()
        ]

    def show_plugins(self) -> None:
        rows = self.plugins()
        if self.as_json:
            self.emit("Plugins", {"plugins": rows})
            return
        for row in rows:
            state = row["state"]
            shown = state if isinstance(state, str) else json.dumps(state, ensure_ascii=False)
            self.out.line(f"{row['plugin_id']}: {shown}")
        if not rows:
            self.out.line("no plugins")

    def show_status(self) -> None:
        config = self.manager.hot_reload
        settings = {
            "strategy": strategy_text(config.strategy),
            "preserve_state": config.preserve_state,
            "auto_rollback": config.auto_rollback,
            "max_reload_attempts": config.max_reload_attempts,
            "reload_cooldown": seconds_text(config.reload_cooldown),
        }
        if self.as_json:
            self.emit("Status", {**settings, "plugins": self.plugins()})
            return
        self.out.line("Hot reload: " + ", ".join(f"{k}={_value(v)}" for k, v in settings.items()))
        self.show_plugins()

    def show_help(self) -> None:
        if self.as_json:
            self.emit("Help", {"commands": list(COMMANDS)})
            return
        for line in COMMANDS:
            self.out.line(line)

    def reload_result(self, plugin_id: str, reloaded: bool, error: str | None) -> None:
        """``ReloadResult`` with ``outcome``: ``reloaded`` (new code), ``unchanged`` (the code
        was the same: the plugin was refreshed in place) or ``failed``."""
        outcome = "failed" if error is not None else "reloaded" if reloaded else "unchanged"
        self.emit(
            "ReloadResult",
            {"plugin_id": plugin_id, "outcome": outcome, "reloaded": reloaded, "error": error},
        )

    async def command(self, line: str) -> bool:
        """Carry out one command line; ``False`` when it asks to quit."""
        from mofa_kernel._errors import PluginError

        if not line:
            return True
        if line == "quit":
            return False
        simple = {"help": self.show_help, "list": self.show_plugins, "status": self.show_status}
        if line in simple and line not in self.manager.plugin_ids():
            simple[line]()
            return True
        head, _, rest = line.partition(" ")
        rest = rest.strip()
        if head == "reload" and rest:
            try:
                reloaded = await self.manager.reload(rest)
            except PluginError as exc:
                self.reload_result(rest, False, str(exc))
            else:
                self.reload_result(rest, reloaded, None)
            return True
        try:
            output = await self.manager.execute(head, rest)
        except PluginError as exc:
            self.emit("ExecuteError", {"plugin_id": head, "error": str(exc)})
        else:
            self.emit("ExecuteResult", {"plugin_id": head, "output": output})
        return True
