"""A plugin with a native crash in it: ``execute("crash")`` dereferences a null pointer."""

from __future__ import annotations

import ctypes
import os

from mofa_kernel import AgentPlugin, PluginMetadata, PluginType


class Fragile(AgentPlugin):
    metadata = PluginMetadata("fragile", "Fragile", PluginType.TOOL)

    async def execute(self, input: str) -> str:
        if input == "crash":
            ctypes.string_at(0)  # SIGSEGV: no Python code can catch this
        if input == "pid":
            return str(os.getpid())
        return f"fragile: {input}"
