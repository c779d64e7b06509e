"""PluginManager with in-process plugins: order, transitions, isolation, deadlines, events."""

from __future__ import annotations

import asyncio
import contextvars
import types
from typing import Any

import pytest

from mofa_kernel import (
    AgentPlugin,
    DependencyCycleError,
    DiscoveryError,
    InvalidStateError,
    KernelEvent,
    MissingDependencyError,
    PluginConfig,
    PluginContext,
    PluginError,
    PluginEvent,
    PluginExecutionError,
    PluginInitError,
    PluginLifecycleError,
    PluginLoadError,
    PluginManager,
    PluginMetadata,
    PluginNotFoundError,
    PluginPriority,
    PluginState,
    PluginTimeoutError,
    PluginType,
    hookimpl,
)

LIFECYCLE = ("load", "init_plugin", "start", "pause", "resume", "stop", "unload")


class Recorder(AgentPlugin):
    """A class-style plugin that logs its calls and can be told to fail or hang at any step."""

    def __init__(
        self,
        pid: str,
        *,
        deps: tuple[str, ...] = (),
        priority: PluginPriority = PluginPriority.NORMAL,
        log: list[str] | None = None,
        fail: str | None = None,
        hang: str | None = None,
    ) -> None:
        self._meta = PluginMetadata(
            pid, pid.title(), PluginType.TOOL, dependencies=deps, priority=priority
        )
        self.log = log if log is not None else []
        self.fail = fail
        self.hang = hang

    @property
    def metadata(self) -> PluginMetadata:
        return self._meta

    async def _step(self, name: str) -> None:
        self.log.append(f"{self._meta.id}.{name}")
        if self.hang == name:
            await asyncio.Event().wait()
        if self.fail == name:
            raise RuntimeError(f"{name} exploded")

    async def load(self, ctx: PluginContext) -> None:
        self.context = ctx
        await self._step("load")

    async def init_plugin(self) -> None:
        await self._step("init_plugin")

    async def start(self) -> None:
        await self._step("start")

    async def pause(self) -> None:
        await self._step("pause")

    async def resume(self) -> None:
        await self._step("resume")

    async def stop(self) -> None:
        await self._step("stop")

    async def unload(self) -> None:
        await self._step("unload")

    async def execute(self, input: str) -> str:
        await self._step("execute")
        if input == "reject":
            raise PluginExecutionError("bad input at column 1")
        if input == "crash":
            raise ZeroDivisionError("division by zero")
        if input == "number":
            return 42  # type: ignore[return-value]
        if input == "slow":
            await asyncio.sleep(10)
        return f"{self._meta.id}:{input}"


def _events(manager: PluginManager) -> list[KernelEvent]:
    seen: list[KernelEvent] = []
    manager.add_listener(seen.append)
    return seen


def _states(events: list[KernelEvent], pid: str) -> list[str]:
    return [
        str(e.new_state)
        for e in events
        if isinstance(e, PluginEvent.StateChanged) and e.plugin_id == pid
    ]


# -- registration and queries ----------------------------------------------------------


async def test_register_and_query() -> None:
    async with PluginManager() as manager:
        plugin = Recorder("alpha")
        assert manager.register(plugin) == "alpha"
        assert manager.plugin_ids() == ["alpha"]
        assert manager.get("alpha") is plugin
        assert manager.state("alpha") == PluginState.UNLOADED
        record = manager.record("alpha")
        assert record.status == "registered"
        assert record.metadata == plugin.metadata
        assert record.source is None
        assert record.timeout == 30.0


def test_duplicate_id_is_refused() -> None:
    manager = PluginManager()
    manager.register(Recorder("alpha"))
    with pytest.raises(DiscoveryError, match="'alpha' is already registered"):
        manager.register(Recorder("alpha"))


def test_unknown_id_is_a_not_found_error() -> None:
    manager = PluginManager()
    with pytest.raises(PluginNotFoundError, match="no plugin 'ghost'") as caught:
        manager.state("ghost")
    assert isinstance(caught.value, KeyError)
    assert caught.value.plugin_id == "ghost"


def test_register_takes_config_and_timeout() -> None:
    manager = PluginManager(timeout=5.0)
    config = PluginConfig({"precision": 3})
    manager.register(Recorder("alpha"), config=config, timeout=0.5)
    assert manager.record("alpha").config is config
    assert manager.record("alpha").timeout == 0.5


# -- the lifecycle of one plugin ---------------------------------------------------------


async def test_full_lifecycle_emits_every_state_change() -> None:
    manager = PluginManager()
    events = _events(manager)
    plugin = Recorder("alpha")
    manager.register(plugin)
    for verb in LIFECYCLE:
        await getattr(manager, verb)("alpha")
        assert plugin.state == manager.state("alpha")
    assert plugin.log == [f"alpha.{verb}" for verb in LIFECYCLE]
    assert _states(events, "alpha") == [
        "Loading",
        "Loaded",
        "Running",
        "Paused",
        "Running",
        "Loaded",
        "Unloaded",
    ]
    variants = [e.variant for e in events]
    assert variants.count("PluginLoaded") == 1
    assert variants.count("PluginUnloaded") == 1
    assert variants.index("PluginLoaded") == 2  # after Loading and Loaded


async def test_start_initialises_when_needed() -> None:
    manager = PluginManager()
    plugin = Recorder("alpha")
    manager.register(plugin)
    await manager.load("alpha")
    await manager.start("alpha")
    assert plugin.log == ["alpha.load", "alpha.init_plugin", "alpha.start"]
    await manager.stop("alpha")
    await manager.start("alpha")  # still initialised: no second init
    assert plugin.log[-2:] == ["alpha.stop", "alpha.start"]


@pytest.mark.parametrize(
    ("setup", "verb", "actual"),
    [
        ((), "start", "Unloaded"),
        ((), "init_plugin", "Unloaded"),
        ((), "stop", "Unloaded"),
        (("load",), "load", "Loaded"),
        (("load",), "pause", "Loaded"),
        (("load",), "resume", "Loaded"),
        (("load", "start"), "start", "Running"),
        (("load", "start"), "resume", "Running"),
        (("load", "start"), "unload", "Running"),
        (("load", "start", "pause"), "pause", "Paused"),
    ],
)
async def test_illegal_transitions_raise_and_change_nothing(
    setup: tuple[str, ...], verb: str, actual: str
) -> None:
    manager = PluginManager()
    events = _events(manager)
    manager.register(Recorder("alpha"))
    for step in setup:
        await getattr(manager, step)("alpha")
    before = manager.state("alpha")
    emitted = len(events)
    with pytest.raises(InvalidStateError) as caught:
        await getattr(manager, verb)("alpha")
    assert str(caught.value.actual) == actual
    assert caught.value.expected
    assert manager.state("alpha") == before
    assert len(events) == emitted


async def test_execute_needs_running() -> None:
    async with PluginManager() as manager:
        manager.register(Recorder("alpha"))
        await manager.load("alpha")
        with pytest.raises(InvalidStateError, match="cannot execute in state Loaded") as caught:
            await manager.execute("alpha", "x")
        assert caught.value.expected == (PluginState.RUNNING,)
        await manager.start("alpha")
        assert await manager.execute("alpha", "x") == "alpha:x"
        await manager.pause("alpha")
        with pytest.raises(InvalidStateError):
            await manager.execute("alpha", "x")


@pytest.mark.parametrize(
    ("step", "error_type"),
    [
        ("load", PluginLoadError),
        ("init_plugin", PluginInitError),
        ("start", PluginLifecycleError),
        ("pause", PluginLifecycleError),
        ("resume", PluginLifecycleError),
        ("stop", PluginLifecycleError),
        ("unload", PluginLifecycleError),
    ],
)
async def test_a_failing_step_puts_the_plugin_in_error(
    step: str, error_type: type[PluginError]
) -> None:
    manager = PluginManager()
    events = _events(manager)
    manager.register(Recorder("alpha", fail=step))
    for verb in LIFECYCLE[: LIFECYCLE.index(step)]:
        await getattr(manager, verb)("alpha")
    with pytest.raises(error_type) as caught:
        await getattr(manager, step)("alpha")
    error = caught.value
    assert error.plugin_id == "alpha"
    assert error.hook == step
    assert f"{step} failed: RuntimeError: {step} exploded (test_manager.py:" in str(error)
    state = manager.state("alpha")
    assert state.is_error
    assert state.message == str(error)
    [reported] = [e for e in events if isinstance(e, PluginEvent.PluginError)]
    assert reported.error == str(error)
    # From ERROR only unload is allowed.
    with pytest.raises(InvalidStateError, match="cannot start in state Error"):
        await manager.start("alpha")


async def test_unload_from_error_cleans_up_when_load_had_completed() -> None:
    manager = PluginManager()
    plugin = Recorder("alpha", fail="start")
    manager.register(plugin)
    await manager.load("alpha")
    with pytest.raises(PluginLifecycleError):
        await manager.start("alpha")
    await manager.unload("alpha")
    assert manager.state("alpha") == PluginState.UNLOADED
    assert plugin.log[-1] == "alpha.unload"


async def test_unload_from_error_skips_unload_hook_when_load_failed() -> None:
    manager = PluginManager()
    plugin = Recorder("alpha", fail="load")
    manager.register(plugin)
    with pytest.raises(PluginLoadError):
        await manager.load("alpha")
    await manager.unload("alpha")
    assert manager.state("alpha") == PluginState.UNLOADED
    assert plugin.log == ["alpha.load"]


async def test_hanging_step_times_out() -> None:
    manager = PluginManager(timeout=0.05)
    events = _events(manager)
    manager.register(Recorder("alpha", hang="start"))
    await manager.load("alpha")
    with pytest.raises(PluginTimeoutError) as caught:
        await manager.start("alpha")
    assert isinstance(caught.value, TimeoutError)
    assert caught.value.timeout == 0.05
    assert str(caught.value) == "start timed out after 0.05s"
    assert manager.state("alpha") == PluginState.error("start timed out after 0.05s")
    assert any(isinstance(e, PluginEvent.PluginError) for e in events)


async def test_per_plugin_timeout_overrides_the_default() -> None:
    async with PluginManager(timeout=30.0) as manager:
        manager.register(Recorder("quick", hang="start"), timeout=0.02)
        report = await manager.start_all()
        assert report.outcomes["quick"].error == "start timed out after 0.02s"


# -- execute ------------------------------------------------------------------------------


async def test_execute_rejection_keeps_the_plugin_running() -> None:
    async with PluginManager() as manager:
        manager.register(Recorder("alpha"))
        await manager.start_all()
        with pytest.raises(PluginExecutionError, match="bad input at column 1") as caught:
            await manager.execute("alpha", "reject")
        assert caught.value.plugin_id == "alpha"
        assert manager.state("alpha") == PluginState.RUNNING
        assert await manager.execute("alpha", "ok") == "alpha:ok"


@pytest.mark.parametrize(
    ("given", "error_type", "message"),
    [
        ("crash", PluginExecutionError, "execute failed: ZeroDivisionError: division by zero"),
        ("number", PluginExecutionError, "execute failed: returned int, expected str"),
        ("slow", PluginTimeoutError, "execute timed out after 0.05s"),
    ],
)
async def test_execute_faults_put_the_plugin_in_error(
    given: str, error_type: type[PluginError], message: str
) -> None:
    async with PluginManager(timeout=0.05) as manager:
        events = _events(manager)
        manager.register(Recorder("alpha"))
        manager.register(Recorder("beta"))
        await manager.start_all()
        with pytest.raises(error_type) as caught:
            await manager.execute("alpha", given)
        assert str(caught.value).startswith(message)
        assert manager.state("alpha").is_error
        assert [e.plugin_id for e in events if isinstance(e, PluginEvent.PluginError)] == ["alpha"]
        assert await manager.execute("beta", "still fine") == "beta:still fine"


async def test_concurrent_executes_are_counted_and_idle_is_awaitable() -> None:
    gate = asyncio.Event()

    class Slow(Recorder):
        async def execute(self, input: str) -> str:
            await gate.wait()
            return input

    async with PluginManager() as manager:
        manager.register(Slow("slow"))
        await manager.start_all()
        calls = [asyncio.create_task(manager.execute("slow", str(n))) for n in range(5)]
        await asyncio.sleep(0)
        assert manager.in_flight("slow") == 5
        assert await manager.wait_idle("slow", timeout=0.01) is False
        idle = asyncio.create_task(manager.wait_idle("slow"))
        gate.set()
        assert await asyncio.gather(*calls) == ["0", "1", "2", "3", "4"]
        assert await idle is True
        assert manager.in_flight("slow") == 0


# -- many plugins ---------------------------------------------------------------------------


async def test_start_all_orders_by_dependency_then_priority_then_id() -> None:
    log: list[str] = []
    manager = PluginManager()
    manager.register(Recorder("zeta", log=log))
    manager.register(
        Recorder("app", deps=("db", "cache"), priority=PluginPriority.CRITICAL, log=log)
    )
    manager.register(Recorder("cache", deps=("db",), log=log))
    manager.register(Recorder("db", priority=PluginPriority.LOW, log=log))
    manager.register(Recorder("alpha", log=log))
    manager.register(Recorder("metrics", priority=PluginPriority.HIGH, log=log))
    report = await manager.start_all()
    assert report.ok
    starts = [entry.split(".")[0] for entry in log if entry.endswith(".start")]
    assert starts == ["metrics", "alpha", "zeta", "db", "cache", "app"]
    assert manager.start_order() == ["metrics", "alpha", "zeta", "db", "cache", "app"]
    log.clear()
    await manager.shutdown()
    stops = [entry.split(".")[0] for entry in log if entry.endswith(".stop")]
    unloads = [entry.split(".")[0] for entry in log if entry.endswith(".unload")]
    assert stops == list(reversed(starts))
    assert unloads == list(reversed(starts))


@pytest.mark.parametrize("count", [2, 150])  # 150: more than one turn's worth of tasks
async def test_independent_plugins_start_concurrently(count: int) -> None:
    all_started = asyncio.Event()
    arrived: list[str] = []

    class Rendezvous(Recorder):
        async def start(self) -> None:
            arrived.append(self.metadata.id)
            if len(arrived) == count:
                all_started.set()
            await all_started.wait()  # would deadlock if the starts ran one after the other

    async with PluginManager(timeout=5.0) as manager:
        names = [f"p{n:03d}" for n in range(count)]
        for name in names:
            manager.register(Rendezvous(name))
        report = await manager.start_all()
        assert report.ok, report.errors()
        assert sorted(arrived) == names


async def test_many_plugins_free_at_once_start_by_priority_then_id() -> None:
    log: list[str] = []
    high = {f"p{n:03d}" for n in range(0, 150, 7)}
    async with PluginManager() as manager:
        for n in reversed(range(150)):  # registration order is not start order
            name = f"p{n:03d}"
            priority = PluginPriority.HIGH if name in high else PluginPriority.NORMAL
            manager.register(Recorder(name, priority=priority, log=log))
        report = await manager.start_all()
        assert report.ok, report.errors()
    starts = [entry.split(".")[0] for entry in log if entry.endswith(".start")]
    assert starts == sorted(high) + sorted(
        f"p{n:03d}" for n in range(150) if f"p{n:03d}" not in high
    )


REQUEST: contextvars.ContextVar[str] = contextvars.ContextVar("request", default="unset")


async def test_plugins_start_in_the_context_start_all_was_called_in() -> None:
    seen: dict[str, str] = {}

    class Reader(Recorder):
        async def start(self) -> None:
            seen[self.metadata.id] = REQUEST.get()

    REQUEST.set("from the host")
    async with PluginManager() as manager:
        names = [f"p{n:03d}" for n in range(150)]  # more than one turn's worth of tasks
        for n, name in enumerate(names):
            manager.register(Reader(name, deps=(names[n - 1],) if n % 10 else ()))
        report = await manager.start_all()
        assert report.ok, report.errors()
    assert seen == dict.fromkeys(names, "from the host")


async def test_stop_order_is_the_reverse_of_reaching_running() -> None:
    release = {"slowdep": asyncio.Event()}
    log: list[str] = []

    class Gated(Recorder):
        async def start(self) -> None:
            await super().start()
            if self.metadata.id in release:
                await release[self.metadata.id].wait()

    async with PluginManager() as manager:
        manager.register(Gated("slowdep", priority=PluginPriority.HIGH, log=log))
        manager.register(Gated("quick", log=log))
        quick_running = asyncio.Event()
        manager.add_listener(
            lambda e: (
                quick_running.set()
                if isinstance(e, PluginEvent.StateChanged)
                and e.plugin_id == "quick"
                and e.new_state == PluginState.RUNNING
                else None
            )
        )
        task = asyncio.create_task(manager.start_all())
        await quick_running.wait()
        release["slowdep"].set()
        assert (await task).ok
        log.clear()
    stops = [entry.split(".")[0] for entry in log if entry.endswith(".stop")]
    assert stops == ["slowdep", "quick"]  # quick reached RUNNING first, so it stops last


async def test_failure_skips_only_dependents() -> None:
    async with PluginManager() as manager:
        events = _events(manager)
        manager.register(Recorder("calculator", fail="start"))
        manager.register(Recorder("skill", deps=("calculator",)))
        manager.register(Recorder("tutor", deps=("skill",)))
        manager.register(Recorder("memory"))
        report = await manager.start_all()
        assert report.outcomes["calculator"].status == "failed"
        assert report.outcomes["skill"].status == "skipped"
        assert report.outcomes["skill"].error == "dependency calculator failed"
        assert report.outcomes["tutor"].status == "skipped"
        assert report.outcomes["memory"].status == "ok"
        assert report.failed == ["calculator"]
        assert sorted(report.skipped) == ["skill", "tutor"]
        assert not report.ok
        assert manager.state("memory") == PluginState.RUNNING
        assert manager.state("skill") == PluginState.UNLOADED
        assert [e.plugin_id for e in events if isinstance(e, PluginEvent.PluginError)] == [
            "calculator"
        ]


async def test_missing_dependency_and_cycle_keep_only_those_down() -> None:
    async with PluginManager() as manager:
        manager.register(Recorder("needs-ghost", deps=("ghost",)))
        manager.register(Recorder("x", deps=("y",)))
        manager.register(Recorder("y", deps=("x",)))
        manager.register(Recorder("fine"))
        report = await manager.start_all()
        assert report.outcomes["needs-ghost"].error == (
            "missing dependency 'ghost' (needs-ghost -> ghost)"
        )
        assert report.outcomes["x"].error == "dependency cycle x -> y -> x"
        assert report.outcomes["fine"].status == "ok"
        missing = manager.dependency_error("needs-ghost")
        assert isinstance(missing, MissingDependencyError)
        assert missing.chain == ("needs-ghost", "ghost")
        cycle = manager.dependency_error("y")
        assert isinstance(cycle, DependencyCycleError)
        assert cycle.chain == ("x", "y", "x")
        assert manager.dependency_error("fine") is None


async def test_disabled_and_manual_plugins() -> None:
    async with PluginManager() as manager:
        manager.register(Recorder("off"), config=PluginConfig(enabled=False))
        manager.register(Recorder("manual"), config=PluginConfig(auto_start=False))
        manager.register(Recorder("needed"), config=PluginConfig(auto_start=False))
        manager.register(Recorder("user", deps=("needed",)))
        manager.register(Recorder("needs-off", deps=("off",)))
        report = await manager.start_all()
        assert report.outcomes["off"].status == "disabled"
        assert "manual" not in report.outcomes
        assert manager.state("manual") == PluginState.UNLOADED
        assert manager.state("needed") == PluginState.RUNNING  # started for its dependent
        assert report.outcomes["needs-off"].error == "dependency off is disabled"


async def test_load_all_and_init_all_then_start_all() -> None:
    async with PluginManager() as manager:
        a = Recorder("a")
        b = Recorder("b", deps=("a",), fail="load")
        c = Recorder("c", deps=("b",))
        for plugin in (a, b, c):
            manager.register(plugin)
        loaded = await manager.load_all()
        assert loaded.outcomes["a"].status == "ok"
        assert loaded.outcomes["b"].status == "failed"
        assert loaded.outcomes["c"].error == "dependency b failed"
        initialised = await manager.init_all()
        assert initialised.outcomes["a"].status == "ok"
        assert a.log == ["a.load", "a.init_plugin"]
        started = await manager.start_all()
        assert started.outcomes["a"].status == "ok"
        assert started.outcomes["c"].error == "dependency b failed"


async def test_shutdown_cleans_up_and_is_idempotent() -> None:
    manager = PluginManager()
    plugin = Recorder("alpha")
    manager.register(plugin)
    async with manager:
        await manager.start_all()
    assert manager.state("alpha") == PluginState.UNLOADED
    await manager.shutdown()
    assert plugin.log.count("alpha.unload") == 1


async def test_health_and_stats_by_id() -> None:
    class Counting(Recorder):
        def stats(self) -> dict[str, Any]:
            return {"calls": len(self.log)}

    class BadStats(Recorder):
        def stats(self) -> dict[str, Any]:
            raise ValueError("no figures")

    async with PluginManager() as manager:
        manager.register(Counting("counting"))
        manager.register(BadStats("bad"))
        manager.register(Recorder("idle"), config=PluginConfig(auto_start=False))
        await manager.start_all()
        assert await manager.health_check() == {"counting": True, "bad": True, "idle": False}
        stats = await manager.stats()
        assert stats["counting"] == {"calls": 3}
        assert stats["bad"]["error"].startswith("stats failed: ValueError: no figures")
        assert manager.state("bad").is_error
        assert stats["idle"] == {}
        assert manager.kernel_stats()["plugins"] == 3


# -- module-style plugins, observers, context ---------------------------------------------


def _monitor_module(seen: list[str]) -> types.ModuleType:
    module = types.ModuleType("monitor_hooks")

    def plugin_metadata() -> PluginMetadata:
        return PluginMetadata("monitor", "Monitor", PluginType.MONITOR)

    def on_plugin_event(event: KernelEvent) -> None:
        seen.append(f"{event.variant}:{getattr(event, 'plugin_id', '')}")

    async def execute(input: str) -> str:
        return f"{len(seen)} events"

    for function in (plugin_metadata, on_plugin_event, execute):
        setattr(module, function.__name__, hookimpl(function))
    return module


async def test_module_style_plugin_observes_every_event() -> None:
    seen: list[str] = []
    async with PluginManager() as manager:
        manager.register(_monitor_module(seen))
        manager.register(Recorder("alpha"))
        await manager.start_all()
        assert "StateChanged:alpha" in seen
        assert "PluginLoaded:alpha" in seen
        assert "PluginLoaded:monitor" in seen
        answer = await manager.execute("monitor", "")
        assert answer == f"{len(seen)} events"
    assert "PluginUnloaded:alpha" in seen


async def test_class_style_observer_and_failing_observer_is_reported() -> None:
    class Observer(Recorder):
        def __init__(self) -> None:
            super().__init__("observer")
            self.events: list[str] = []

        @hookimpl
        def on_plugin_event(self, event: KernelEvent) -> None:
            self.events.append(event.variant)
            if event.variant == "PluginLoaded":
                raise RuntimeError("observer broke")

    async with PluginManager() as manager:
        events = _events(manager)
        observer = Observer()
        manager.register(observer)
        await manager.start_all()
        errors = [e for e in events if isinstance(e, PluginEvent.PluginError)]
        assert errors
        assert errors[0].plugin_id == "observer"
        assert "on_plugin_event(PluginLoaded) failed: RuntimeError: observer broke" in (
            errors[0].error
        )
        assert manager.state("observer") == PluginState.RUNNING
        assert "PluginError" not in observer.events  # never fed its own failure report


async def test_context_shares_state_and_emits_into_the_stream() -> None:
    class Publisher(Recorder):
        async def start(self) -> None:
            assert self.context is not None
            await self.context.set_state("answer", 42)
            await self.context.emit_event(
                PluginEvent.Custom(plugin_id="publisher", event_type="ready", data=b"\x01")
            )

    class Reader(Recorder):
        async def execute(self, input: str) -> str:
            assert self.context is not None
            return str(await self.context.get_state("answer"))

    async with PluginManager(agent_id="agent-7") as manager:
        events = _events(manager)
        manager.register(Publisher("publisher"))
        manager.register(Reader("reader", deps=("publisher",)), config=PluginConfig({"k": 1}))
        await manager.start_all()
        assert await manager.execute("reader", "") == "42"
        reader = manager.get("reader")
        assert reader.context is not None
        assert reader.context.agent_id == "agent-7"
        assert reader.context.plugin_id == "reader"
        assert reader.context.config.get_int("k") == 1
        custom = [e for e in events if isinstance(e, PluginEvent.Custom)]
        assert custom == [
            PluginEvent.Custom(plugin_id="publisher", event_type="ready", data=b"\x01")
        ]


async def test_subscription_sees_the_lifecycle() -> None:
    async with PluginManager() as manager:
        subscription = manager.events(maxsize=100)
        manager.register(Recorder("alpha"))
        await manager.start_all()
        subscription.close()
        variants = [event.variant async for event in subscription]
        assert variants[:3] == ["StateChanged", "StateChanged", "PluginLoaded"]
        assert variants[-1] == "StateChanged"


async def test_plugin_with_read_only_state_property_keeps_working() -> None:
    class ReadOnly(Recorder):
        @property  # type: ignore[override]
        def state(self) -> PluginState:
            return PluginState.RUNNING

    async with PluginManager() as manager:
        manager.register(ReadOnly("ro"))
        assert (await manager.start_all()).ok
        assert manager.state("ro") == PluginState.RUNNING


async def test_trace_prints_each_call(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOFA_TRACE", "1")
    async with PluginManager() as manager:
        manager.register(Recorder("alpha"))
        await manager.start_all()
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(" ok in ")[0] for line in lines] == [
        "mofa: alpha.load",
        "mofa: alpha.init_plugin",
        "mofa: alpha.start",
        "mofa: alpha.stop",
        "mofa: alpha.unload",
    ]
    assert all(line.endswith(" ms") for line in lines)


async def test_replace_plugin_swaps_instance_and_hooks() -> None:
    seen_old: list[str] = []
    seen_new: list[str] = []
    async with PluginManager() as manager:
        manager.register(_monitor_module(seen_old))
        await manager.start_all()
        old = manager.get("monitor")
        returned = manager.replace_plugin("monitor", _monitor_module(seen_new))
        assert returned is old
        assert manager.get("monitor").state == PluginState.RUNNING
        manager.register(Recorder("later"))
        await manager.start_all()
        assert any(entry.endswith(":later") for entry in seen_new)
        assert not any(entry.endswith(":later") for entry in seen_old)


def test_replace_plugin_requires_same_id() -> None:
    manager = PluginManager()
    manager.register(Recorder("alpha"))
    with pytest.raises(PluginLoadError, match="describes a plugin 'beta'"):
        manager.replace_plugin("alpha", Recorder("beta"))


async def test_busy_plugin_refuses_a_second_transition() -> None:
    entered = asyncio.Event()
    release = asyncio.Event()

    class SlowStart(Recorder):
        async def start(self) -> None:
            entered.set()
            await release.wait()

    async with PluginManager() as manager:
        manager.register(SlowStart("slow"))
        await manager.load("slow")
        starting = asyncio.create_task(manager.start("slow"))
        await entered.wait()
        with pytest.raises(InvalidStateError, match="another lifecycle call is in progress"):
            await manager.unload("slow")
        release.set()
        await starting
        assert manager.state("slow") == PluginState.RUNNING


async def test_keyboard_interrupt_is_not_contained() -> None:
    class Interrupting(Recorder):
        async def start(self) -> None:
            raise KeyboardInterrupt

    manager = PluginManager()
    manager.register(Interrupting("ki"))
    await manager.load("ki")
    with pytest.raises(KeyboardInterrupt):
        await manager.start("ki")


async def test_system_exit_from_a_plugin_is_contained() -> None:
    class Exiting(Recorder):
        async def start(self) -> None:
            raise SystemExit(3)

    async with PluginManager() as manager:
        manager.register(Exiting("exits"))
        report = await manager.start_all()
        error = report.outcomes["exits"].error or ""
        assert error.startswith("start failed: SystemExit: 3 (test_manager.py:")
        assert manager.state("exits").is_error


# -- execute deadlines (the watchdog) --------------------------------------------------------


class Waiter(Recorder):
    """Execute waits for a per-input gate; ``forever`` never returns."""

    def __init__(self, pid: str) -> None:
        super().__init__(pid)
        self.gates: dict[str, asyncio.Event] = {}
        self.cancelled: list[str] = []
        self.entered = asyncio.Event()

    async def execute(self, input: str) -> str:
        gate = self.gates.setdefault(input, asyncio.Event())
        self.entered.set()
        try:
            await gate.wait()
        except asyncio.CancelledError:
            self.cancelled.append(input)
            raise
        return input


async def test_execute_deadline_is_never_early() -> None:
    async with PluginManager(timeout=0.2) as manager:
        plugin = Waiter("w")
        manager.register(plugin)
        await manager.start_all()
        loop = asyncio.get_running_loop()
        began = loop.time()
        with pytest.raises(PluginTimeoutError, match=r"execute timed out after 0\.2s"):
            await manager.execute("w", "forever")
        elapsed = loop.time() - began
        assert elapsed >= 0.2
        assert plugin.cancelled == ["forever"]


async def test_execute_timeout_cancels_only_the_late_call() -> None:
    async with PluginManager() as manager:
        slow, fast = Waiter("slow"), Waiter("fast")
        manager.register(slow, timeout=0.05)
        manager.register(fast, timeout=30.0)
        await manager.start_all()
        fast_call = asyncio.create_task(manager.execute("fast", "x"))
        with pytest.raises(PluginTimeoutError):
            await manager.execute("slow", "forever")
        assert not fast_call.done()
        fast.gates["x"].set()
        assert await fast_call == "x"
        assert manager.state("fast") == PluginState.RUNNING
        assert manager.state("slow").is_error


async def test_calls_begun_later_get_their_own_full_deadline() -> None:
    async with PluginManager(timeout=0.15) as manager:
        plugin = Waiter("w")
        manager.register(plugin)
        await manager.start_all()
        first = asyncio.create_task(manager.execute("w", "first"))
        await asyncio.sleep(0.1)
        second = asyncio.create_task(manager.execute("w", "second"))
        await asyncio.sleep(0)
        plugin.gates["second"].set()  # answers well inside its own deadline
        assert await second == "second"
        with pytest.raises(PluginTimeoutError):
            await first


async def test_execute_timeout_leaves_the_caller_task_usable() -> None:
    async with PluginManager(timeout=0.02) as manager:
        manager.register(Waiter("w"))
        manager.register(Recorder("other"))
        await manager.start_all()
        with pytest.raises(PluginTimeoutError):
            await manager.execute("w", "forever")
        task = asyncio.current_task()
        assert task is not None
        if hasattr(task, "cancelling"):
            assert task.cancelling() == 0
        await asyncio.sleep(0.01)  # would raise CancelledError if a cancel were left pending
        assert await manager.execute("other", "after") == "other:after"


async def test_outside_cancellation_of_an_execute_is_not_a_plugin_fault() -> None:
    async with PluginManager() as manager:
        plugin = Waiter("w")
        manager.register(plugin)
        await manager.start_all()
        call = asyncio.create_task(manager.execute("w", "forever"))
        await plugin.entered.wait()
        assert manager.in_flight("w") == 1
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert manager.state("w") == PluginState.RUNNING
        assert manager.in_flight("w") == 0


# -- a failure at run time takes down only the dependents ------------------------------------


async def test_runtime_fault_stops_running_dependents_in_reverse_order() -> None:
    log: list[str] = []
    async with PluginManager() as manager:
        manager.register(Recorder("base", log=log))
        manager.register(Recorder("middle", deps=("base",), log=log))
        manager.register(Recorder("top", deps=("middle",), log=log))
        manager.register(Recorder("bystander", log=log))
        assert (await manager.start_all()).ok
        with pytest.raises(PluginExecutionError):
            await manager.execute("base", "crash")
        with pytest.raises(InvalidStateError):  # refused at once, before the stop has run
            await manager.execute("top", "x")
        await manager.settle()
        assert manager.state("base").is_error
        assert manager.state("middle") == PluginState.LOADED
        assert manager.state("top") == PluginState.LOADED
        assert manager.record("top").reason == "stopped because dependency base failed"
        assert [e for e in log if e.endswith(".stop")] == ["top.stop", "middle.stop"]
        assert manager.state("bystander") == PluginState.RUNNING
        assert await manager.execute("bystander", "x") == "bystander:x"


@pytest.mark.parametrize("hook", ["load", "init_plugin", "start"])
async def test_lifecycle_hook_returning_a_value_is_a_fault(hook: str) -> None:
    class Returns(Recorder):
        async def load(self, ctx: PluginContext) -> None:
            return 1 if hook == "load" else None  # type: ignore[return-value]

        async def init_plugin(self) -> None:
            return "x" if hook == "init_plugin" else None  # type: ignore[return-value]

        async def start(self) -> None:
            return [] if hook == "start" else None  # type: ignore[return-value]

    async with PluginManager() as manager:
        manager.register(Returns("r"))
        report = await manager.start_all()
        error = report.outcomes["r"].error or ""
        assert error.startswith(f"{hook} failed: returned ")
        assert error.endswith("expected None")
