"""Plugins of one manager share state through their contexts."""

from __future__ import annotations

import asyncio

from mofa_kernel import AgentPlugin, PluginManager, PluginMetadata, PluginType


def add_one(count: int | None) -> int:
    return (count or 0) + 1


class Counter(AgentPlugin):
    """Counts every request in the shared state."""

    metadata = PluginMetadata("counter", "Counter", PluginType.MONITOR)

    async def execute(self, input: str) -> str:
        assert self.context is not None
        total = await self.context.update_state("requests", add_one)  # atomic
        return str(total)


class Dashboard(AgentPlugin):
    """Reads what the counter wrote."""

    metadata = PluginMetadata("dashboard", "Dashboard", PluginType.SKILL).with_dependency("counter")

    async def execute(self, input: str) -> str:
        assert self.context is not None
        requests = await self.context.get_state("requests", 0)
        return f"{requests} requests so far"


async def main() -> None:
    async with PluginManager() as manager:
        manager.register(Counter())
        manager.register(Dashboard())
        await manager.start_all()
        await asyncio.gather(*(manager.execute("counter", "hit") for _ in range(5)))
        print(await manager.execute("dashboard", ""))


if __name__ == "__main__":
    asyncio.run(main())
