"""Both plugin styles become driveable plugins; misspelt hooks are refused with their names."""

from __future__ import annotations

import types
from typing import Any

import pytest

from mofa_kernel import (
    AgentPlugin,
    PluginExecutionError,
    PluginLoadError,
    PluginMetadata,
    PluginState,
    PluginType,
    hookimpl,
)
from mofa_kernel._adapters import HOOK_ARGUMENTS, HookPlugin, as_agent_plugin, hook_problems

META = PluginMetadata("mod", "Module plugin", PluginType.TOOL)


def _module(**functions: Any) -> types.ModuleType:
    module = types.ModuleType("fake_plugin_module")
    for name, function in functions.items():
        setattr(module, name, hookimpl(function))
    return module


def test_hook_arguments_mirror_the_lifecycle() -> None:
    assert HOOK_ARGUMENTS["load"] == ("ctx",)
    assert HOOK_ARGUMENTS["execute"] == ("input",)
    assert HOOK_ARGUMENTS["restore_state"] == ("state",)
    assert HOOK_ARGUMENTS["on_plugin_event"] == ("event",)
    assert HOOK_ARGUMENTS["start"] == ()


def test_misspelt_hook_is_named_with_a_suggestion() -> None:
    module = _module(plugin_metadata=lambda: META, excute=lambda input: input)
    assert hook_problems(module) == ["hook 'excute' is not a mofa hook (did you mean 'execute'?)"]


def test_wrong_argument_name_is_named() -> None:
    def load(context: object) -> None:
        pass

    module = _module(plugin_metadata=lambda: META, load=load)
    [problem] = hook_problems(module)
    assert "hook 'load' has argument 'context'" in problem
    assert "expected: ctx" in problem


def test_as_agent_plugin_refuses_with_plugin_label() -> None:
    module = _module(plugin_metadata=lambda: META, stat=lambda: {})
    with pytest.raises(PluginLoadError, match=r"plugin 'mod': hook 'stat' is not a mofa hook"):
        as_agent_plugin(module, label="'mod'")


def test_class_style_wrong_hook_on_method_is_refused() -> None:
    class Observer(AgentPlugin):
        metadata = META

        async def execute(self, input: str) -> str:
            return input

        @hookimpl
        def on_plugin_event(self, evt: object) -> None:
            pass

    with pytest.raises(PluginLoadError, match="argument 'evt'"):
        as_agent_plugin(Observer(), label="'mod'")


def test_module_without_metadata_hook_is_refused() -> None:
    with pytest.raises(PluginLoadError, match="'plugin_metadata' is missing"):
        as_agent_plugin(_module(execute=lambda input: input), label="'x'")


def test_object_without_hooks_is_refused() -> None:
    with pytest.raises(PluginLoadError, match="neither an AgentPlugin nor an object"):
        as_agent_plugin(object(), label="'x'")


def test_class_instead_of_instance_is_refused() -> None:
    class Plugin(AgentPlugin):
        metadata = META

        async def execute(self, input: str) -> str:
            return input

    with pytest.raises(PluginLoadError, match="instance of Plugin, not the class"):
        as_agent_plugin(Plugin, label="'x'")


def test_metadata_of_wrong_type_is_refused() -> None:
    module = _module(plugin_metadata=lambda: {"id": "x"})
    with pytest.raises(
        PluginLoadError, match=r"plugin_metadata\(\) returned dict, expected PluginMetadata"
    ):
        as_agent_plugin(module, label="'x'")


def test_async_metadata_hook_is_refused() -> None:
    async def plugin_metadata() -> PluginMetadata:
        return META

    with pytest.raises(PluginLoadError, match="must be a plain function"):
        as_agent_plugin(_module(plugin_metadata=plugin_metadata), label="'x'")


async def test_hook_plugin_calls_plain_and_async_hooks() -> None:
    calls: list[str] = []

    async def execute(input: str) -> str:
        return input.upper()

    def start() -> None:
        calls.append("start")

    def load(ctx: object) -> None:
        calls.append(f"load {ctx}")

    module = _module(plugin_metadata=lambda: META, execute=execute, start=start, load=load)
    plugin = as_agent_plugin(module, label="'mod'")
    assert isinstance(plugin, HookPlugin)
    assert plugin.metadata == META
    await plugin.load("CTX")  # type: ignore[arg-type]
    await plugin.start()
    await plugin.stop()  # not implemented: the AgentPlugin default
    assert calls == ["load CTX", "start"]
    assert await plugin.execute("abc") == "ABC"


async def test_hook_plugin_defaults() -> None:
    plugin = as_agent_plugin(_module(plugin_metadata=lambda: META), label="'mod'")
    assert await plugin.health_check() is False
    plugin.state = PluginState.RUNNING
    assert await plugin.health_check() is True
    assert plugin.stats() == {}
    with pytest.raises(PluginExecutionError, match="does not implement the execute hook"):
        await plugin.execute("x")


async def test_hook_may_ignore_its_arguments() -> None:
    module = _module(plugin_metadata=lambda: META, execute=lambda: "constant")
    plugin = as_agent_plugin(module, label="'mod'")
    assert await plugin.execute("ignored") == "constant"


def test_class_instances_are_scanned_once_per_class() -> None:
    class Plugin(AgentPlugin):
        metadata = META

        async def execute(self, input: str) -> str:
            return input

    first, second = Plugin(), Plugin()
    assert as_agent_plugin(first, label="a") is first
    assert as_agent_plugin(second, label="b") is second
