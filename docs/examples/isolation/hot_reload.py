"""Edit an isolated plugin's file: a new worker takes over with the new code and the count."""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from mofa_kernel import KernelEvent, PluginManager, ReloadEvent

#: The counting plugin of the hot-reload page, which carries its count across reloads.
COUNTER = Path(__file__).parents[2] / "reload_examples" / "counter.py"

CONFIG = """\
[kernel]
allow = ["counter"]

[plugins.counter]
isolation = "process"       # imported by its worker only, never by the host

[hot_reload]
strategy = "immediate"
"""


def install(site: Path, source: str) -> Path:
    """Lay the plugin out as pip installs it: its package, and a dist-info with its entry point."""
    plugin_file = site / "counter" / "__init__.py"
    plugin_file.parent.mkdir()
    plugin_file.write_text(source, encoding="utf-8")
    dist_info = site / "counter_plugin-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: counter-plugin\nVersion: 1.0\n", encoding="utf-8"
    )
    (dist_info / "entry_points.txt").write_text(
        "[mofa.plugins]\ncounter = counter:CounterPlugin\n", encoding="utf-8"
    )
    return plugin_file


async def next_reload(events: AsyncIterator[KernelEvent]) -> None:
    """Print the reload events of the next reload, up to ReloadCompleted."""
    async for event in events:
        if isinstance(event, ReloadEvent.ReloadFailed):
            print(f"  {event.variant}: {event.error}")
        elif isinstance(event, ReloadEvent.ReloadCompleted):
            print(f"  {event.variant}: success={event.success}")
            return
        elif isinstance(event, ReloadEvent):
            print(f"  {event.variant}")


async def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        site = Path(folder)
        source = COUNTER.read_text(encoding="utf-8")
        plugin_file = install(site, source)
        sys.path.insert(0, folder)
        (site / "mofa.toml").write_text(CONFIG, encoding="utf-8")
        async with PluginManager.from_config(site / "mofa.toml") as manager:
            manager.discover()
            await manager.start_all()
            print(await manager.execute("counter", "a"))
            print(await manager.execute("counter", "b"))

            events = manager.events()
            async with manager.hot_reloading():
                print("edit: VERSION = 2")
                plugin_file.write_text(source.replace("VERSION = 1", "VERSION = 2"), "utf-8")
                await next_reload(events)
                print(await manager.execute("counter", "c"))

                print("edit: VERSION = 1 / 0")
                plugin_file.write_text(source.replace("VERSION = 1", "VERSION = 1 / 0"), "utf-8")
                await next_reload(events)
                print(await manager.execute("counter", "d"))
            print("imported by the host:", "counter" in sys.modules)


if __name__ == "__main__":
    asyncio.run(main())
