"""A bounded subscription to the event stream: a slow consumer loses the oldest events, counted."""

from __future__ import annotations

import asyncio

from mofa_kernel import AgentPlugin, PluginManager, PluginMetadata, PluginType


class Echo(AgentPlugin):
    metadata = PluginMetadata("echo", "Echo", PluginType.TOOL)

    async def execute(self, input: str) -> str:
        return input


async def main() -> None:
    manager = PluginManager()
    manager.register(Echo())
    events = manager.events(maxsize=3)  # room for three events
    await manager.start_all()  # Loading, Loaded, PluginLoaded, Running: four events
    await manager.shutdown()  # Loaded, Unloaded, PluginUnloaded: three more
    events.close()  # iteration ends once the buffer is empty
    async for event in events:
        print(event)
    print("dropped:", events.dropped)


if __name__ == "__main__":
    asyncio.run(main())
