"""The hello sample, driven by a real PluginManager."""

from __future__ import annotations

from mofa_sample_hello import HelloPlugin

from mofa_kernel import PluginConfig, PluginManager, PluginState


async def test_greets_the_input() -> None:
    async with PluginManager() as manager:
        manager.register(HelloPlugin())
        await manager.start_all()
        assert await manager.execute("hello", "world") == "Hello, world!"
        assert await manager.execute("hello", "  ") == "Hello, world!"


async def test_greeting_comes_from_the_config() -> None:
    async with PluginManager() as manager:
        manager.register(HelloPlugin(), config=PluginConfig({"greeting": "Bonjour"}))
        await manager.start_all()
        assert await manager.execute("hello", "Ada") == "Bonjour, Ada!"
        assert manager.state("hello") == PluginState.RUNNING
        assert (await manager.stats())["hello"] == {"greeted": 1}
