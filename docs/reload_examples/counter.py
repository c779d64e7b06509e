"""A plugin that counts its calls, and keeps counting across hot reloads."""

from __future__ import annotations

from mofa_kernel import AgentPlugin, HotReloadable, PluginMetadata, PluginType

VERSION = 1


class CounterPlugin(AgentPlugin, HotReloadable):
    metadata = PluginMetadata("counter", "Counter", PluginType.TOOL)

    def __init__(self) -> None:
        self.calls = 0

    async def execute(self, input: str) -> str:
        self.calls += 1
        return f"version {VERSION}: call {self.calls} ({input})"

    async def save_state(self) -> object:
        # Runs on the old instance. Plain data only: it is all that crosses over.
        return {"calls": self.calls}

    async def restore_state(self, state: object) -> None:
        # Runs on the new instance, after its load and init_plugin, before its start.
        assert isinstance(state, dict)
        self.calls = state["calls"]
