"""The pluggy hook specifications: the plugin lifecycle, one hook per AgentPlugin method."""

from __future__ import annotations

import inspect
from types import SimpleNamespace

import pluggy
import pytest

from mofa_kernel import AgentPlugin, HotReloadable, PluginMetadata, PluginType, hookimpl, hookspec
from mofa_kernel._hookspecs import PROJECT_NAME, LifecycleHooks

#: Hook name -> the AgentPlugin / HotReloadable method it mirrors.
MIRRORED = {
    "load": AgentPlugin.load,
    "init_plugin": AgentPlugin.init_plugin,
    "start": AgentPlugin.start,
    "pause": AgentPlugin.pause,
    "resume": AgentPlugin.resume,
    "stop": AgentPlugin.stop,
    "unload": AgentPlugin.unload,
    "execute": AgentPlugin.execute,
    "health_check": AgentPlugin.health_check,
    "stats": AgentPlugin.stats,
    "save_state": HotReloadable.save_state,
    "restore_state": HotReloadable.restore_state,
    "refresh": HotReloadable.refresh,
}


def spec_names() -> list[str]:
    return [
        name
        for name, member in vars(LifecycleHooks).items()
        if callable(member) and hasattr(member, f"{PROJECT_NAME}_spec")
    ]


def arguments(function: object) -> list[str]:
    assert callable(function)
    return list(inspect.signature(function).parameters)[1:]  # without self


def test_project_name() -> None:
    assert PROJECT_NAME == "mofa"


def test_markers_are_pluggy_markers_for_mofa() -> None:
    assert isinstance(hookimpl, pluggy.HookimplMarker)
    assert isinstance(hookspec, pluggy.HookspecMarker)
    assert hookimpl.project_name == "mofa"
    assert hookspec.project_name == "mofa"


def test_every_hook_is_specified() -> None:
    assert set(spec_names()) == {*MIRRORED, "plugin_metadata", "on_plugin_event"}


@pytest.mark.parametrize(("hook", "method"), MIRRORED.items())
def test_hook_arguments_are_the_methods(hook: str, method: object) -> None:
    assert arguments(getattr(LifecycleHooks, hook)) == arguments(method)


def test_contract_argument_names() -> None:
    assert arguments(LifecycleHooks.load) == ["ctx"]
    assert arguments(LifecycleHooks.execute) == ["input"]
    assert arguments(LifecycleHooks.plugin_metadata) == []
    assert arguments(LifecycleHooks.on_plugin_event) == ["event"]


@pytest.mark.parametrize("hook", [*MIRRORED, "plugin_metadata"])
def test_per_plugin_hooks_are_firstresult(hook: str) -> None:
    options = getattr(getattr(LifecycleHooks, hook), f"{PROJECT_NAME}_spec")
    assert options["firstresult"] is True


def test_on_plugin_event_reaches_every_implementation() -> None:
    options = LifecycleHooks.on_plugin_event.mofa_spec  # type: ignore[attr-defined]
    assert options["firstresult"] is False


def test_pluggy_accepts_the_specs_and_calls_an_implementation() -> None:
    manager = pluggy.PluginManager(PROJECT_NAME)
    manager.add_hookspecs(LifecycleHooks)
    seen: list[object] = []
    meta = PluginMetadata("echo", "Echo", PluginType.TOOL)

    @hookimpl
    def plugin_metadata() -> PluginMetadata:
        return meta

    @hookimpl
    def execute(input: str) -> str:
        return input[::-1]

    @hookimpl
    def on_plugin_event(event: object) -> None:
        seen.append(event)

    plugin = SimpleNamespace(
        plugin_metadata=plugin_metadata, execute=execute, on_plugin_event=on_plugin_event
    )
    manager.register(plugin)
    assert manager.hook.plugin_metadata() is meta
    assert manager.hook.execute(input="abc") == "cba"
    manager.hook.on_plugin_event(event="e")
    assert seen == ["e"]


def test_pluggy_refuses_a_wrong_argument_name() -> None:
    manager = pluggy.PluginManager(PROJECT_NAME)
    manager.add_hookspecs(LifecycleHooks)

    @hookimpl
    def execute(text: str) -> str:
        return text

    with pytest.raises(pluggy.PluginValidationError, match="text"):
        manager.register(SimpleNamespace(execute=execute))


@pytest.mark.parametrize("hook", spec_names())
def test_every_hook_has_a_docstring(hook: str) -> None:
    doc = inspect.getdoc(getattr(LifecycleHooks, hook))
    assert doc
    assert doc.strip()[-1] in ".)"
