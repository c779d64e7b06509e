"""Tests of the greeter plugin, with the fixtures of mofa-kernel's pytest plugin.

Run them once the distribution is installed, with the Python that has mofa-kernel:
``python -m pip install -e ".[test]"``, then ``python -m pytest``.
"""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest
from mofa_kernel import PluginConfig, PluginExecutionError, PluginManager, PluginState
from mofa_kernel.testing import EntryPointSandbox, LifecycleRunner, assert_conforms

from greeter import GreeterPlugin


async def test_conforms_to_the_plugin_contract() -> None:
    await assert_conforms(GreeterPlugin(), inputs=["world", ""])


async def test_greets_whoever_the_input_names(mofa_manager: PluginManager) -> None:
    mofa_manager.register(GreeterPlugin())
    await mofa_manager.start_all()
    assert await mofa_manager.execute("greeter", "world") == "Hello, world!"


async def test_rejects_an_empty_input(mofa_manager: PluginManager) -> None:
    mofa_manager.register(GreeterPlugin())
    await mofa_manager.start_all()
    with pytest.raises(PluginExecutionError, match="empty"):
        await mofa_manager.execute("greeter", "   ")
    assert mofa_manager.state("greeter") == PluginState.RUNNING


async def test_settings_choose_the_greeting(mofa_lifecycle: LifecycleRunner) -> None:
    run = await mofa_lifecycle(
        GreeterPlugin(),
        settings={"greeting": "Bonjour"},
        inputs=["Ada"],
    )
    assert run.outputs == ("Bonjour, Ada!",)
    assert run.stats == {"answered": 1}


async def test_a_misspelt_setting_is_refused(mofa_manager: PluginManager) -> None:
    mofa_manager.register(
        GreeterPlugin(),
        config=PluginConfig(settings={"greting": "Hi"}),
    )
    report = await mofa_manager.start_all()
    assert report.errors() == [
        "greeter: load failed: plugins.greeter.settings.greting: unknown key; "
        "did you mean 'greeting'?"
    ]


def test_the_distribution_declares_the_entry_point() -> None:
    (entry_point,) = entry_points(group="mofa.plugins", name="greeter")
    assert entry_point.load() is GreeterPlugin


async def test_the_kernel_discovers_the_installed_plugin(
    mofa_entry_points: EntryPointSandbox, mofa_manager: PluginManager
) -> None:
    mofa_entry_points.use_installed("greeter")
    assert mofa_manager.discover().registered == ["greeter"]
    await mofa_manager.start_all()
    assert await mofa_manager.execute("greeter", "kernel") == "Hello, kernel!"
