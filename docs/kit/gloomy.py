"""A plugin that breaks two rules, and what the conformance check says about it."""

from __future__ import annotations

import asyncio

from mofa_kernel import AgentPlugin, PluginMetadata, PluginType
from mofa_kernel.testing import check_plugin


class GloomyPlugin(AgentPlugin):
    metadata = PluginMetadata("gloomy", "Gloomy", PluginType.TOOL)

    def __init__(self) -> None:
        self.seen: set[str] = set()

    async def execute(self, input: str) -> str:
        self.seen.add(input)
        return input

    async def health_check(self) -> bool:
        return False  # even while running

    def stats(self) -> dict[str, object]:
        return {"seen": self.seen}  # a set: JSON cannot carry it


if __name__ == "__main__":
    print(asyncio.run(check_plugin(GloomyPlugin(), inputs=["hello"])))
