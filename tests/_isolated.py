"""Plugin sources for the isolation tests, written into installed distributions and run in
workers; and what the tests ask of a worker process.

Each misbehaviour is chosen by the input of ``execute`` or, for lifecycle
hooks, by the plugin's ``hang`` setting, so one distribution covers every
fault. Before a misbehaviour that would stop the worker from answering, the
plugin emits a ``Custom`` event named after it: the test awaits that event
instead of sleeping.
"""

from __future__ import annotations

from pathlib import Path

FAULTY = """\
import asyncio
import ctypes
import os
import subprocess
import sys
import threading
import time

from mofa_kernel import AgentPlugin, HotReloadable, PluginEvent, PluginMetadata, PluginType


class Faulty(AgentPlugin, HotReloadable):
    metadata = PluginMetadata(
        id="faulty", name="Faulty", plugin_type=PluginType.TOOL, version="2.5"
    )

    async def _hang_in(self, hook):
        if self.context.config.get("hang") == hook:
            await self._about_to("hang")
            while True:
                pass

    async def _about_to(self, what):
        event = PluginEvent.Custom(plugin_id="faulty", event_type=what)
        await self.context.emit_event(event)

    async def load(self, ctx):
        self.context = ctx
        self.count = 0
        await self._hang_in("load")

    async def init_plugin(self):
        await self._hang_in("init_plugin")

    async def start(self):
        await self._hang_in("start")

    async def pause(self):
        await self._hang_in("pause")

    async def resume(self):
        await self._hang_in("resume")

    async def stop(self):
        await self._hang_in("stop")

    async def unload(self):
        await self._hang_in("unload")

    def stats(self):
        return {"count": self.count}

    async def save_state(self):
        return {"count": self.count}

    async def restore_state(self, state):
        self.count = state["count"]

    async def execute(self, input):
        self.count += 1
        if input == "pid":
            return str(os.getpid())
        if input == "imported":
            return " ".join(sorted(name for name in sys.modules if name.startswith("iso")))
        if input == "exit":
            os._exit(1)
        if input == "segv":
            ctypes.string_at(0)
        if input == "sys.exit":
            sys.exit(4)
        if input == "spin":
            await self._about_to("spin")
            while True:
                pass
        if input == "wait":
            await self._about_to("wait")
            await asyncio.sleep(3600)
        if input == "hog":
            hoard = []
            while True:
                hoard.append(bytearray(1 << 20))
        if input == "hog-and-keep":
            hoard = []
            try:
                while True:
                    hoard.append(bytearray(1 << 20))
            except MemoryError:
                self.hoard = hoard
                return f"kept {len(hoard)} MiB"
        if input == "reject":
            from mofa_kernel import PluginExecutionError

            raise PluginExecutionError("no thanks")
        if input == "raise":
            raise ValueError("bad input")
        if input == "leak":
            thread = threading.Thread(target=lambda: time.sleep(3600))
            thread.start()
            child = subprocess.Popen(["sleep", "3600"])
            await self.context.set_state("child", child.pid)
            return str(child.pid)
        if input == "state":
            old = await self.context.get_state("counter", 0)
            await self.context.set_state("counter", old + 1)
            await self.context.update_state("log", lambda log: (log or []) + ["visited"])
            return str(await self.context.get_state("counter"))
        if input == "print":
            print("printed by the isolated plugin")
            return "printed"
        return f"echo {input}"
"""

HOOKS = """\
import os

from mofa_kernel import PluginMetadata, PluginType, hookimpl

_ctx = None
_seen = []


@hookimpl
def plugin_metadata():
    return PluginMetadata(id="hooky", name="Hooky", plugin_type=PluginType.TOOL)


@hookimpl
def load(ctx):
    global _ctx
    _ctx = ctx


@hookimpl
def on_plugin_event(event):
    _seen.append(f"{type(event).__name__}:{getattr(event, 'plugin_id', '')}")


@hookimpl
async def execute(input):
    if input == "seen":
        return " ".join(_seen)
    if input == "setting":
        return str(_ctx.config.get("greeting"))
    return f"hook {os.getpid()} {input}"
"""

BROKEN = """\
raise RuntimeError("this plugin cannot be imported")
"""

TYPED = """\
import attrs

from mofa_kernel import AgentPlugin, PluginMetadata, PluginType


@attrs.define
class Greeting:
    greeting: str = "Hello"


class Typed(AgentPlugin):
    metadata = PluginMetadata(id="typed", name="Typed", plugin_type=PluginType.TOOL)
    settings_type = Greeting

    async def execute(self, input):
        return f"{self.context.settings.greeting}, {input}"
"""


def running(pid: int) -> bool:
    """Whether process ``pid`` exists and has not ended (a zombie has ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")
