"""AgentPlugin and HotReloadable: the class-style contract and the seed's defaults."""

from __future__ import annotations

import inspect

import pytest

from mofa_kernel import (
    AgentPlugin,
    HotReloadable,
    PluginConfig,
    PluginContext,
    PluginMetadata,
    PluginState,
    PluginType,
)

META = PluginMetadata("echo", "Echo", PluginType.TOOL)


class Echo(AgentPlugin):
    metadata = META

    async def execute(self, input: str) -> str:
        return input


class PropertyEcho(AgentPlugin):
    def __init__(self, plugin_id: str = "prop-echo") -> None:
        self._meta = PluginMetadata(plugin_id, "Property echo", PluginType.custom("demo"))

    @property
    def metadata(self) -> PluginMetadata:
        return self._meta

    async def execute(self, input: str) -> str:
        return input.upper()


class Stateful(Echo, HotReloadable):
    def __init__(self) -> None:
        self.count = 0

    async def save_state(self) -> object:
        return {"count": self.count}

    async def restore_state(self, state: object) -> None:
        assert isinstance(state, dict)
        self.count = state["count"]


def test_metadata_as_class_attribute() -> None:
    plugin = Echo()
    assert plugin.metadata is META
    assert plugin.plugin_id == "echo"
    assert plugin.plugin_type == PluginType.TOOL


def test_metadata_as_property() -> None:
    plugin = PropertyEcho("p1")
    assert plugin.plugin_id == "p1"
    assert plugin.plugin_type == PluginType.custom("demo")


def test_init_takes_no_required_arguments() -> None:
    assert Echo().state == PluginState.UNLOADED
    assert PropertyEcho().plugin_id == "prop-echo"


def test_metadata_as_instance_attribute() -> None:
    class Configured(AgentPlugin):
        def __init__(self) -> None:
            self.metadata = PluginMetadata("configured", "Configured", PluginType.SKILL)

        async def execute(self, input: str) -> str:
            return input

    assert Configured().plugin_id == "configured"


def test_missing_metadata_shows_when_read() -> None:
    # Instantiation cannot insist on metadata (it may be set in __init__); the manager
    # refuses such a plugin at registration, and reading it fails plainly.
    class NoMetadata(AgentPlugin):
        async def execute(self, input: str) -> str:
            return input

    with pytest.raises(AttributeError, match="metadata"):
        _ = NoMetadata().plugin_id


def test_cannot_instantiate_without_execute() -> None:
    class NoExecute(AgentPlugin):
        metadata = META

    with pytest.raises(TypeError, match="execute"):
        NoExecute()  # type: ignore[abstract]


def test_base_is_abstract() -> None:
    with pytest.raises(TypeError):
        AgentPlugin()  # type: ignore[abstract]


def test_lifecycle_methods_are_async_and_stats_plain() -> None:
    for name in (
        "load",
        "init_plugin",
        "start",
        "pause",
        "resume",
        "stop",
        "unload",
        "execute",
        "health_check",
    ):
        assert inspect.iscoroutinefunction(getattr(AgentPlugin, name)), name
    assert not inspect.iscoroutinefunction(AgentPlugin.stats)


async def test_default_lifecycle_does_nothing_but_keep_the_context() -> None:
    plugin = Echo()
    ctx = PluginContext("agent", PluginConfig({"k": 1}), plugin_id="echo")
    assert plugin.context is None
    await plugin.load(ctx)
    assert plugin.context is ctx
    for step in (plugin.init_plugin, plugin.start, plugin.pause, plugin.resume, plugin.stop):
        assert await step() is None
    assert await plugin.unload() is None
    assert plugin.state == PluginState.UNLOADED
    assert vars(plugin) == {"context": ctx}


async def test_execute() -> None:
    assert await Echo().execute("hi") == "hi"
    assert await PropertyEcho().execute("hi") == "HI"


@pytest.mark.parametrize(
    ("state", "healthy"),
    [
        (PluginState.RUNNING, True),
        (PluginState.PAUSED, False),
        (PluginState.LOADED, False),
        (PluginState.UNLOADED, False),
        (PluginState.error("boom"), False),
    ],
)
async def test_default_health_is_state_running(state: PluginState, healthy: bool) -> None:
    plugin = Echo()
    plugin.state = state
    assert await plugin.health_check() is healthy


def test_default_stats_are_empty_and_fresh() -> None:
    plugin = Echo()
    first = plugin.stats()
    assert first == {}
    first["x"] = 1
    assert plugin.stats() == {}


def test_state_set_on_one_instance_only() -> None:
    first, second = Echo(), Echo()
    first.state = PluginState.RUNNING
    assert second.state == PluginState.UNLOADED
    assert Echo.state == PluginState.UNLOADED


def test_state_may_be_a_property() -> None:
    class Tracked(Echo):
        def __init__(self) -> None:
            self.seen: list[PluginState] = []

        @property  # type: ignore[override]
        def state(self) -> PluginState:
            return self.seen[-1] if self.seen else PluginState.UNLOADED

        @state.setter
        def state(self, value: PluginState) -> None:
            self.seen.append(value)

    plugin = Tracked()
    plugin.state = PluginState.LOADED
    plugin.state = PluginState.RUNNING
    assert plugin.state == PluginState.RUNNING
    assert plugin.seen == [PluginState.LOADED, PluginState.RUNNING]


class TestHotReloadable:
    async def test_defaults(self) -> None:
        class Plain(Echo, HotReloadable):
            pass

        plugin = Plain()
        assert await plugin.refresh() is None
        assert await plugin.save_state() is None
        assert await plugin.restore_state({"anything": 1}) is None

    def test_methods_are_async(self) -> None:
        for name in ("refresh", "save_state", "restore_state"):
            assert inspect.iscoroutinefunction(getattr(HotReloadable, name)), name

    async def test_state_travels_from_old_to_new_instance(self) -> None:
        old = Stateful()
        old.count = 41
        saved = await old.save_state()
        new = Stateful()
        await new.restore_state(saved)
        assert new.count == 41
        assert new is not old

    def test_is_a_mixin(self) -> None:
        assert isinstance(Stateful(), AgentPlugin)
        assert isinstance(Stateful(), HotReloadable)
        assert not isinstance(Echo(), HotReloadable)
