"""An isolated plugin crashes: the host carries on, and the kernel restarts the plugin."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from mofa_kernel import PluginExecutionError, PluginManager, PluginState

CONFIG = Path(__file__).with_name("mofa.toml")


async def main() -> None:
    async with PluginManager.from_config(CONFIG) as manager:
        manager.discover()  # starts fragile's worker, which imports it: the host never does
        await manager.start_all()
        print(await manager.execute("fragile", "hello"))
        print("own process:", await manager.execute("fragile", "pid") != str(os.getpid()))
        events = manager.events()
        try:
            await manager.execute("fragile", "crash")
        except PluginExecutionError as exc:
            print("failed:", exc)
        print("state:", manager.state("fragile"))
        async for event in events:  # the restart: Unloaded, Loading, Loaded, Running
            if getattr(event, "new_state", None) == PluginState.RUNNING:
                break
        print("state:", manager.state("fragile"))
        print(await manager.execute("fragile", "hello again"))


if __name__ == "__main__":
    asyncio.run(main())
