"""Typed settings: a plugin's settings_type filled from its settings table, typos reported."""

from __future__ import annotations

import asyncio

from mofa_kernel import PluginConfig, PluginManager
from word_count import WordCountPlugin


async def main() -> None:
    async with PluginManager() as manager:
        # What [plugins.word-count.settings] would give, here with a typo in one key.
        manager.register(WordCountPlugin(), config=PluginConfig(settings={"min_lenght": 3}))
        report = await manager.start_all()
        for line in report.errors():
            print(line)

    async with PluginManager() as manager:
        plugin = WordCountPlugin()
        manager.register(plugin, config=PluginConfig(settings={"min_length": 3}))
        await manager.start_all()
        print("settings:", plugin.settings)
        print("count:", await manager.execute("word-count", "to be or not to be"))


if __name__ == "__main__":
    asyncio.run(main())
