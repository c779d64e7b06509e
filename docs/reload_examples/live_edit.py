"""Edit a plugin's file while the host serves it: good edits take over, broken ones don't."""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from mofa_kernel import (
    HotReloadConfig,
    KernelEvent,
    PluginManager,
    ReloadEvent,
    ReloadStrategy,
)

HERE = Path(__file__).parent


async def next_reload(events: AsyncIterator[KernelEvent]) -> None:
    """Print the reload events of the next reload, up to ReloadCompleted."""
    async for event in events:
        if isinstance(event, ReloadEvent.ReloadFailed):
            print(f"  {event.variant}: {event.error} (attempt {event.attempt})")
        elif isinstance(event, ReloadEvent.ReloadCompleted):
            print(f"  {event.variant}: success={event.success}")
            return
        elif isinstance(event, ReloadEvent):
            print(f"  {event.variant}")


def write(path: Path, text: str) -> None:
    """Save a file, as an editor does."""
    path.write_text(text, encoding="utf-8")


async def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        # The plugin's code, as a package the host imports: counter/__init__.py.
        source = (HERE / "counter.py").read_text(encoding="utf-8")
        plugin_file = Path(folder, "counter", "__init__.py")
        plugin_file.parent.mkdir()
        write(plugin_file, source)
        sys.path.insert(0, folder)
        import counter

        config = HotReloadConfig(strategy=ReloadStrategy.IMMEDIATE)
        async with PluginManager(hot_reload=config) as manager:
            manager.register(counter.CounterPlugin())
            await manager.start_all()
            print(await manager.execute("counter", "a"))
            print(await manager.execute("counter", "b"))

            events = manager.events()
            async with manager.hot_reloading():
                print("edit: VERSION = 2")
                write(plugin_file, source.replace("VERSION = 1", "VERSION = 2"))
                await next_reload(events)
                print(await manager.execute("counter", "c"))

                print("edit: a syntax error")
                write(plugin_file, source.replace("VERSION = 1", "VERSION = (3"))
                await next_reload(events)
                print(await manager.execute("counter", "d"))


if __name__ == "__main__":
    asyncio.run(main())
