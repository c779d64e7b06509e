"""Watching the event stream while one plugin goes through its whole lifecycle."""

from __future__ import annotations

import asyncio

from mofa_kernel import (
    AgentPlugin,
    KernelEvent,
    PluginEvent,
    PluginManager,
    PluginMetadata,
    PluginType,
)


class Greeter(AgentPlugin):
    metadata = PluginMetadata("greeter", "Greeter", PluginType.SKILL)

    async def execute(self, input: str) -> str:
        return f"Hello, {input}!"


def show(event: KernelEvent) -> None:
    if isinstance(event, PluginEvent.StateChanged):
        print(f"{event.plugin_id}: {event.old_state} -> {event.new_state}")
    else:
        print(f"{event.variant}: {event.plugin_id}")


async def main() -> None:
    manager = PluginManager()
    manager.add_listener(show)
    manager.register(Greeter())
    await manager.load("greeter")
    await manager.init_plugin("greeter")  # stays Loaded: no StateChanged
    await manager.start("greeter")
    await manager.pause("greeter")
    await manager.resume("greeter")
    print(await manager.execute("greeter", "world"))
    await manager.shutdown()  # stop, then unload


if __name__ == "__main__":
    asyncio.run(main())
