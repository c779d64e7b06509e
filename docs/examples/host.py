"""A host program: discover the installed plugins, start them, use them, shut down."""

from __future__ import annotations

import asyncio

from mofa_kernel import PluginManager


async def main() -> None:
    async with PluginManager() as manager:
        manager.discover()  # entry points of group "mofa.plugins"
        report = await manager.start_all()  # dependencies first
        for line in report.errors():
            print("failed:", line)
        print("word-count:", await manager.execute("word-count", "to be or not to be"))
        print("shout:", await manager.execute("shout", "hello"))
        order = manager.start_order()
        print("word-count starts before shout:", order.index("word-count") < order.index("shout"))
        health = await manager.health_check()
        print("healthy:", health["word-count"], health["shout"])
    # Leaving the block stopped and unloaded every plugin, in reverse order.
    print("after shutdown:", manager.state("word-count"))


if __name__ == "__main__":
    asyncio.run(main())
