"""Tests of the text-tools plugins (word_count and shout), with mofa-kernel's pytest plugin."""

from __future__ import annotations

import asyncio

import shout
from word_count import WordCountPlugin

from mofa_kernel import PluginManager, PluginState
from mofa_kernel.testing import (
    EntryPointSandbox,
    LifecycleRunner,
    ManagerFactory,
    RegisterPlugin,
    assert_conforms,
)


async def test_word_count_conforms() -> None:
    await assert_conforms(WordCountPlugin, inputs=["one two three", ""])


async def test_shout_conforms_with_the_plugin_it_depends_on() -> None:
    await assert_conforms(shout, companions=[WordCountPlugin()], inputs=["hi"])


async def test_min_length_comes_from_the_settings(
    mofa_register: RegisterPlugin, mofa_manager: PluginManager
) -> None:
    mofa_register(WordCountPlugin, settings={"min_length": 4})
    await mofa_manager.start_all()
    assert await mofa_manager.execute("word-count", "an example of the text") == "2"


async def test_the_whole_lifecycle(mofa_lifecycle: LifecycleRunner) -> None:
    run = await mofa_lifecycle(WordCountPlugin(), inputs=["one two", "three"])
    assert run.outputs == ("2", "1")
    assert run.stats == {"texts": 2}
    assert run.transitions[-1] == (PluginState.LOADED, PluginState.UNLOADED)


async def test_found_through_entry_points(
    mofa_entry_points: EntryPointSandbox, mofa_manager: PluginManager
) -> None:
    mofa_entry_points.add_distribution(
        "text-tools", {"word-count": WordCountPlugin, "shout": shout}
    )
    assert sorted(mofa_manager.discover().registered) == ["shout", "word-count"]
    await mofa_manager.start_all()
    assert await mofa_manager.execute("shout", "hello") == "HELLO!"


def test_in_a_test_without_pytest_asyncio(mofa_manager_factory: ManagerFactory) -> None:
    async def count(text: str) -> str:
        async with mofa_manager_factory() as manager:
            manager.register(WordCountPlugin())
            await manager.start_all()
            return await manager.execute("word-count", text)

    assert asyncio.run(count("three short words")) == "3"
