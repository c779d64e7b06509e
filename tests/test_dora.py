"""The dora serve loop (mofa_kernel.dora) driven by dora's own MockNode, with no daemon.

Real plugins run under a real PluginManager; only the node is a stand-in.
The real dataflows (``dora run``, two daemons) are in
tests/integration/test_dora_dataflow.py.
"""

from __future__ import annotations

import asyncio
import json
import queue
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest

pytest.importorskip("dora.testing", reason="dora-rs 1.x (Python 3.11 and newer) is not installed")
pa = pytest.importorskip("pyarrow")

from dora.testing import MockNode  # noqa: E402 - after the skip

from mofa_kernel import (  # noqa: E402
    AgentPlugin,
    DependencyCycleError,
    MissingDependencyError,
    PluginExecutionError,
    PluginInitError,
    PluginManager,
    PluginMetadata,
    PluginState,
    PluginType,
)
from mofa_kernel.dora import (  # noqa: E402
    NodeServer,
    new_event_loop,
    serve,
    start_plugins,
    startup_order,
)
from mofa_kernel.dora._serve import STOPPING  # noqa: E402


class Echo(AgentPlugin):
    """Answers ``id:input``; fails on ``boom``."""

    def __init__(self, pid: str = "echo", dependencies: tuple[str, ...] = ()) -> None:
        self.metadata = PluginMetadata(pid, pid, PluginType.TOOL, dependencies=dependencies)
        self.calls: list[str] = []

    async def execute(self, input: str) -> str:
        self.calls.append(input)
        if input == "boom":
            raise PluginExecutionError("went boom", plugin_id=self.metadata.id)
        return f"{self.metadata.id}:{input}"


class Recorder(MockNode):
    """MockNode that keeps each output's metadata too (MockNode itself drops it)."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        super().__init__(events)
        self.sent: list[tuple[str, Any, dict[str, Any]]] = []

    def send_output(
        self, output_id: str, data: Any, metadata: dict[str, Any] | None = None
    ) -> None:
        super().send_output(output_id, data, metadata)
        self.sent.append((output_id, data, dict(metadata or {})))


def text(value: str, input_id: str = "in", **metadata: Any) -> dict[str, Any]:
    return {
        "type": "INPUT",
        "id": input_id,
        "value": pa.array([value], type=pa.string()),
        "metadata": metadata,
    }


def binary(value: bytes, input_id: str = "in", **metadata: Any) -> dict[str, Any]:
    return {
        "type": "INPUT",
        "id": input_id,
        "value": pa.array(list(value), type=pa.uint8()),
        "metadata": metadata,
    }


def envelope(results: Any, status: Any = True) -> str:
    return json.dumps({"step_name": "agent", "node_results": results, "dataflow_status": status})


def payload(data: Any) -> str:
    """An output's text, whichever of the two types it has."""
    if data.type == pa.uint8():
        return bytes(data.to_pylist()).decode("utf-8")
    (value,) = data.to_pylist()
    return str(value)


@pytest.fixture
async def manager() -> AsyncIterator[PluginManager]:
    async with PluginManager() as running:
        running.register(Echo("echo"))
        running.register(Echo("other"))
        await start_plugins(running, ["echo", "other"])
        yield running


# -- replies -----------------------------------------------------------------------------------


async def test_every_input_is_answered_on_out_in_order_with_its_metadata(
    manager: PluginManager,
) -> None:
    node = Recorder([text(f"m{i}", request_id=f"r{i}", hop=i) for i in range(5)])
    report = await serve(node, manager, plugins=["echo"])
    assert [(o, payload(d)) for o, d, _ in node.sent] == [("out", f"echo:m{i}") for i in range(5)]
    assert [m for _, _, m in node.sent] == [
        {"request_id": f"r{i}", "hop": i, "plugin_id": "echo"} for i in range(5)
    ]
    assert all(d.type == pa.string() for _, d, _ in node.sent)
    assert (report.received, report.answered, report.failed, report.reason) == (5, 5, 0, "stop")


async def test_uint8_bytes_are_answered_with_uint8_bytes(manager: PluginManager) -> None:
    node = Recorder([binary("héllo".encode(), request_id="b1")])
    await serve(node, manager, plugins=["echo"])
    ((output, data, metadata),) = node.sent
    assert (output, data.type, payload(data)) == ("out", pa.uint8(), "echo:héllo")
    assert metadata == {"request_id": "b1", "plugin_id": "echo"}


async def test_a_failure_goes_out_on_error_as_json_with_the_input_metadata(
    manager: PluginManager,
) -> None:
    node = Recorder([text("boom", request_id="r1"), binary(b"boom", request_id="r2")])
    report = await serve(node, manager, plugins=["echo"])
    assert [(o, d.type) for o, d, _ in node.sent] == [
        ("error", pa.string()),
        ("error", pa.uint8()),
    ]
    for (_, data, metadata), rid in zip(node.sent, ("r1", "r2"), strict=True):
        assert json.loads(payload(data)) == {
            "plugin_id": "echo",
            "input_id": "in",
            "error": "went boom",
        }
        assert metadata == {"request_id": rid, "plugin_id": "echo"}
    assert (report.answered, report.failed) == (0, 2)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (pa.array([1, 2], type=pa.int64()), "got an array of int64"),
        (pa.array(["a", "b"], type=pa.string()), "got 2 elements"),
        (pa.array([0xFF, 0xFE], type=pa.uint8()), "not UTF-8"),
    ],
)
async def test_an_input_of_another_shape_is_answered_on_error(
    manager: PluginManager, value: Any, problem: str
) -> None:
    node = Recorder([{"type": "INPUT", "id": "in", "value": value, "metadata": {}}])
    await serve(node, manager, plugins=["echo"])
    ((output, data, _),) = node.sent
    assert output == "error"
    assert problem in json.loads(payload(data))["error"]
    assert manager.get("echo").calls == []  # type: ignore[attr-defined]


async def test_with_several_plugins_the_input_id_names_the_plugin(manager: PluginManager) -> None:
    node = Recorder([text("a", "echo"), text("b", "other"), text("c", "nobody")])
    await serve(node, manager, plugins=["echo", "other"])
    replies = [(o, payload(d), m.get("plugin_id")) for o, d, m in node.sent]
    assert replies[:2] == [("out", "echo:a", "echo"), ("out", "other:b", "other")]
    output, data, plugin_id = replies[2]
    assert (output, plugin_id) == ("error", None)
    error = json.loads(data)
    assert error["plugin_id"] is None
    assert error["error"] == "no plugin 'nobody' is served by this node (it serves echo, other)"


# -- the MoFA envelope -------------------------------------------------------------------------


async def test_an_envelope_is_unwrapped_and_the_reply_wrapped(manager: PluginManager) -> None:
    node = Recorder([text(envelope("hi", status=False), request_id="r1")])
    await serve(node, manager, plugins=["echo"])
    ((output, data, metadata),) = node.sent
    assert output == "out"
    assert json.loads(payload(data)) == {
        "step_name": "echo",
        "node_results": "echo:hi",
        "dataflow_status": False,
    }
    assert metadata["request_id"] == "r1"


async def test_an_envelope_with_null_results_is_not_answered(manager: PluginManager) -> None:
    node = Recorder([text(envelope(None)), text(envelope("x"))])
    report = await serve(node, manager, plugins=["echo"])
    assert [json.loads(payload(d))["node_results"] for _, d, _ in node.sent] == ["echo:x"]
    assert (report.received, report.answered, report.ignored) == (2, 1, 1)
    assert manager.get("echo").calls == ["x"]  # type: ignore[attr-defined]


async def test_structured_results_reach_the_plugin_as_json_text(manager: PluginManager) -> None:
    node = Recorder([text(envelope({"a": [1, 2]}))])
    await serve(node, manager, plugins=["echo"])
    assert manager.get("echo").calls == ['{"a": [1, 2]}']  # type: ignore[attr-defined]


async def test_a_failure_inside_an_envelope_is_wrapped_too(manager: PluginManager) -> None:
    node = Recorder([binary(envelope("boom", status="go").encode())])
    await serve(node, manager, plugins=["echo"])
    ((output, data, _),) = node.sent
    assert (output, data.type) == ("error", pa.uint8())
    wrapped = json.loads(payload(data))
    assert (wrapped["step_name"], wrapped["dataflow_status"]) == ("echo", "go")
    assert json.loads(wrapped["node_results"])["error"] == "went boom"


async def test_raw_format_passes_an_envelope_through_untouched(manager: PluginManager) -> None:
    node = Recorder([text(envelope("hi"))])
    await serve(node, manager, plugins=["echo"], format="raw")
    assert payload(node.sent[0][1]) == "echo:" + envelope("hi")


async def test_mofa_format_refuses_what_is_not_an_envelope(manager: PluginManager) -> None:
    node = Recorder([text('{"op": "get"}'), text(envelope("ok"))])
    await serve(node, manager, plugins=["echo"], format="mofa")
    assert [o for o, _, _ in node.sent] == ["error", "out"]
    assert "expected a MoFA envelope" in json.loads(payload(node.sent[0][1]))["error"]
    assert manager.get("echo").calls == ["ok"]  # type: ignore[attr-defined]


async def test_auto_format_leaves_other_json_alone(manager: PluginManager) -> None:
    node = Recorder([text('{"op": "get", "key": "k"}')])
    await serve(node, manager, plugins=["echo"])
    assert payload(node.sent[0][1]) == 'echo:{"op": "get", "key": "k"}'


# -- flow: concurrency, stopping, nothing lost -------------------------------------------------


class Gate(AgentPlugin):
    """Holds every execute until ``limit`` of them are waiting together, counting the peak."""

    metadata = PluginMetadata("gate", "Gate", PluginType.TOOL)

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0
        self.peak = 0
        self.full = asyncio.Event()

    async def execute(self, input: str) -> str:
        self.active += 1
        self.peak = max(self.peak, self.active)
        if self.active >= self.limit:
            self.full.set()
        await self.full.wait()
        for _ in range(20):  # stay in flight a while, giving others every chance to start
            await asyncio.sleep(0)
        self.active -= 1
        return input


async def test_executes_run_concurrently_up_to_the_bound_and_no_further() -> None:
    gate = Gate(limit=3)
    async with PluginManager() as manager:
        manager.register(gate)
        await start_plugins(manager, ["gate"])
        node = Recorder([text(str(i), request_id=i) for i in range(12)])
        report = await asyncio.wait_for(
            serve(node, manager, plugins=["gate"], concurrency=3), timeout=60
        )
    assert gate.peak == 3
    assert sorted(m["request_id"] for _, _, m in node.sent) == list(range(12))
    assert report.answered == 12


async def test_many_inputs_are_each_answered_exactly_once(manager: PluginManager) -> None:
    count = 300 if _quick() else 2000
    node = Recorder([text(f"m{i}", request_id=i) for i in range(count)])
    report = await serve(node, manager, plugins=["echo"], concurrency=16)
    ids = [m["request_id"] for _, _, m in node.sent]
    assert sorted(ids) == list(range(count))  # nothing lost, nothing twice
    assert all(payload(d) == f"echo:m{m['request_id']}" for _, d, m in node.sent)
    assert (report.received, report.answered) == (count, count)


#: What dora 1.1's ``next(timeout=...)`` returns when nothing came in time.
TIMED_OUT = {"type": "ERROR", "error": "Timeout event stream error: Receiver timed out\n..."}


class BlockingNode(Recorder):
    """Hands out its events, then blocks in next() until released (as a quiet dataflow does);
    like dora's, a next() with a timeout returns a timeout ERROR event when it passes."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        super().__init__([*events, {"type": "STOP", "id": "MANUAL"}])
        self.waiting = threading.Event()
        self.release = threading.Event()

    def next(self, timeout: float | None = None) -> dict[str, Any] | None:
        if len(self._events) == 1:  # only the STOP is left
            self.waiting.set()
            if not self.release.wait(timeout):
                return dict(TIMED_OUT)
        return super().next(timeout)

    def try_recv(self) -> dict[str, Any] | None:
        return None if len(self._events) == 1 else super().next()


async def test_the_event_loop_keeps_running_while_the_node_waits(manager: PluginManager) -> None:
    node = BlockingNode([text("a")])
    served = asyncio.create_task(serve(node, manager, plugins=["echo"]))
    # Other coroutines (hot reload, plugins' own tasks) go on while the reader waits.
    await asyncio.to_thread(node.waiting.wait)
    ticks = 0
    for _ in range(5):
        await asyncio.sleep(0)
        ticks += 1
    assert not served.done()
    assert [payload(d) for _, d, _ in node.sent] == ["echo:a"]
    node.release.set()
    report = await served
    assert (ticks, report.reason) == (5, "stop")


async def test_stop_finishes_the_calls_in_flight_then_returns() -> None:
    gate = Gate(limit=2)
    async with PluginManager() as manager:
        manager.register(gate)
        await start_plugins(manager, ["gate"])
        node = BlockingNode([text("one", request_id=1), text("two", request_id=2)])
        server = NodeServer(node, manager, plugins=["gate"], concurrency=2)
        served = asyncio.create_task(server.run())
        await asyncio.to_thread(node.waiting.wait)
        server.stop()
        report = await asyncio.wait_for(served, timeout=60)
        node.release.set()
    assert report.reason == "stopped"
    assert sorted(m["request_id"] for _, _, m in node.sent) == [1, 2]
    assert (report.received, report.answered) == (2, 2)


class FedNode:
    """A node fed by the test as a dataflow would feed it: ``next`` waits (a timeout gives a
    timeout ERROR event, as dora's does), ``try_recv`` does not. It notes which threads read."""

    def __init__(self) -> None:
        self.queue: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        self.sent: list[tuple[str, Any, dict[str, Any]]] = []
        self.readers: set[int] = set()
        self._replies = threading.Condition()

    def feed(self, *events: dict[str, Any]) -> None:
        for event in events:
            self.queue.put(event)

    def next(self, timeout: float | None = None) -> dict[str, Any] | None:
        self.readers.add(threading.get_ident())
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            return dict(TIMED_OUT)

    def try_recv(self) -> dict[str, Any] | None:
        self.readers.add(threading.get_ident())
        try:
            return self.queue.get_nowait()
        except queue.Empty:
            return None

    def send_output(self, output_id: str, data: Any, metadata: dict[str, Any]) -> None:
        with self._replies:
            self.sent.append((output_id, data, dict(metadata)))
            self._replies.notify_all()

    def wait_for_replies(self, count: int) -> bool:
        with self._replies:
            return self._replies.wait_for(lambda: len(self.sent) >= count, timeout=60)


class Hold(AgentPlugin):
    """Holds the input ``hold`` until released; answers any other input at once."""

    metadata = PluginMetadata("hold", "Hold", PluginType.TOOL)

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.started = asyncio.Event()
        self.released = asyncio.Event()

    async def execute(self, input: str) -> str:
        self.calls.append(input)
        if input == "hold":
            self.started.set()
            await self.released.wait()
        return f"done:{input}"


def on_loop(reading: str, scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run ``scenario`` where a reader thread reads the node (any loop), or the loop's own
    thread does (the loop the dora-node command runs)."""
    factory = new_event_loop if reading == "loop" else None
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(scenario())


@pytest.mark.parametrize("reading", ["thread", "loop"])
def test_an_input_taken_after_stop_is_answered_on_error_and_the_call_in_flight_finishes(
    reading: str,
) -> None:
    async def scenario() -> None:
        hold = Hold()
        async with PluginManager() as manager:
            manager.register(hold)
            await start_plugins(manager, ["hold"])
            node = FedNode()
            server = NodeServer(node, manager, plugins=["hold"])
            served = asyncio.create_task(server.run())
            node.feed(text("hold", request_id=1))
            await asyncio.wait_for(hold.started.wait(), timeout=60)
            server.stop()  # as SIGTERM does
            node.feed(text("late", request_id=2))  # arrives while the call is in flight
            assert await asyncio.to_thread(node.wait_for_replies, 1)
            (late,) = node.sent
            assert late[0] == "error"
            assert late[2] == {"request_id": 2, "plugin_id": "hold"}
            assert json.loads(payload(late[1]))["error"] == STOPPING
            assert not served.done()  # the call in flight is not finished yet
            hold.released.set()
            report = await asyncio.wait_for(served, timeout=60)
        assert [(o, payload(d), m["request_id"]) for o, d, m in node.sent[1:]] == [
            ("out", "done:hold", 1)
        ]
        assert hold.calls == ["hold"]  # the late input was not executed
        assert (report.received, report.answered, report.failed) == (2, 1, 1)
        assert report.reason == "stopped"

    on_loop(reading, scenario)


@pytest.mark.parametrize("reading", ["thread", "loop"])
def test_stop_with_nothing_in_flight_returns_and_takes_nothing_more(reading: str) -> None:
    async def scenario() -> None:
        async with PluginManager() as manager:
            manager.register(Echo("echo"))
            await start_plugins(manager, ["echo"])
            node = FedNode()
            server = NodeServer(node, manager, plugins=["echo"])
            served = asyncio.create_task(server.run())
            node.feed(text("a", request_id=1))
            assert await asyncio.to_thread(node.wait_for_replies, 1)
            server.stop()
            report = await asyncio.wait_for(served, timeout=60)
        node.feed(text("b", request_id=2))  # after run() returned: left in the node's queue
        assert (report.received, report.answered, report.reason) == (1, 1, "stopped")
        assert node.queue.get_nowait()["metadata"] == {"request_id": 2}

    on_loop(reading, scenario)


def test_on_the_commands_loop_its_own_thread_reads_and_timers_run_while_it_waits() -> None:
    count = 100 if _quick() else 1000

    async def scenario() -> None:
        async with PluginManager() as manager:
            manager.register(Echo("echo"))
            await start_plugins(manager, ["echo"])
            node = FedNode()
            served = asyncio.create_task(serve(node, manager, plugins=["echo"], concurrency=4))
            # The node is idle: timers and other threads' callbacks still reach the loop.
            ticks = asyncio.Event()
            loop = asyncio.get_running_loop()

            def tick(left: int) -> None:
                if left:
                    loop.call_later(0.001, tick, left - 1)
                else:
                    ticks.set()

            tick(5)
            await asyncio.wait_for(ticks.wait(), timeout=60)
            assert await asyncio.to_thread(lambda: "from a thread") == "from a thread"
            node.feed(*(text(f"m{i}", request_id=i) for i in range(count)))
            node.feed({"type": "STOP", "id": "MANUAL"})
            report = await asyncio.wait_for(served, timeout=60)
        assert sorted(m["request_id"] for _, _, m in node.sent) == list(range(count))
        assert (report.received, report.answered, report.reason) == (count, count, "stop")
        assert node.readers == {threading.get_ident()}  # no reader thread

    on_loop("loop", scenario)


def test_on_the_commands_loop_a_failing_node_is_raised_from_run() -> None:
    class Broken(FedNode):
        def try_recv(self) -> dict[str, Any] | None:
            raise OSError("daemon went away")

    async def scenario() -> None:
        async with PluginManager() as manager:
            manager.register(Echo("echo"))
            await start_plugins(manager, ["echo"])
            with pytest.raises(OSError, match="daemon went away"):
                await asyncio.wait_for(serve(Broken(), manager, plugins=["echo"]), timeout=60)

    on_loop("loop", scenario)


async def test_stop_event_waits_for_the_calls_in_flight() -> None:
    gate = Gate(limit=4)
    async with PluginManager() as manager:
        manager.register(gate)
        await start_plugins(manager, ["gate"])
        node = Recorder([text(str(i)) for i in range(4)])  # then STOP, appended by MockNode
        report = await asyncio.wait_for(
            serve(node, manager, plugins=["gate"], concurrency=4), timeout=60
        )
    assert (report.reason, report.answered) == ("stop", 4)


async def test_the_end_of_the_event_stream_ends_serving(manager: PluginManager) -> None:
    class Ending(Recorder):
        def next(self, timeout: float | None = None) -> dict[str, Any] | None:
            event = super().next(timeout)
            return None if event is not None and event["type"] == "STOP" else event

    node = Ending([text("a")])
    report = await serve(node, manager, plugins=["echo"])
    assert (report.reason, report.answered) == ("closed", 1)


async def test_a_failing_node_is_raised_from_run(manager: PluginManager) -> None:
    class Broken(Recorder):
        def next(self, timeout: float | None = None) -> dict[str, Any] | None:
            raise OSError("daemon went away")

    with pytest.raises(OSError, match="daemon went away"):
        await serve(Broken([]), manager, plugins=["echo"])


async def test_other_events_are_not_inputs(manager: PluginManager) -> None:
    node = Recorder(
        [
            {"type": "INPUT_CLOSED", "id": "in"},
            {"type": "ERROR", "error": "something odd"},
            text("a"),
        ]
    )
    report = await serve(node, manager, plugins=["echo"])
    assert (report.received, [payload(d) for _, d, _ in node.sent]) == (1, ["echo:a"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"plugins": []}, "at least one plugin"),
        ({"plugins": ["echo"], "concurrency": 0}, "concurrency must be at least 1"),
        ({"plugins": ["echo"], "format": "xml"}, "format must be one of auto, raw, mofa"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        NodeServer(MockNode([]), PluginManager(), **kwargs)


# -- starting only what is served --------------------------------------------------------------


class Faulty(Echo):
    async def init_plugin(self) -> None:
        raise PluginInitError("no config", plugin_id=self.metadata.id)


async def test_start_plugins_starts_the_named_and_their_dependencies_only() -> None:
    async with PluginManager() as manager:
        for plugin in (
            Echo("app", ("lib",)),
            Echo("lib", ("base",)),
            Echo("base"),
            Echo("bystander"),
        ):
            manager.register(plugin)
        assert await start_plugins(manager, ["app"]) == ["base", "lib", "app"]
        states = {pid: manager.state(pid) for pid in manager.plugin_ids()}
    assert states == {
        "app": PluginState.RUNNING,
        "lib": PluginState.RUNNING,
        "base": PluginState.RUNNING,
        "bystander": PluginState.UNLOADED,
    }


async def test_start_plugins_reports_what_is_missing_or_circular() -> None:
    async with PluginManager() as manager:
        manager.register(Echo("needy", ("ghost",)))
        manager.register(Echo("ping", ("pong",)))
        manager.register(Echo("pong", ("ping",)))
        with pytest.raises(MissingDependencyError) as missing:
            await start_plugins(manager, ["needy"])
        assert missing.value.chain == ("needy", "ghost")
        with pytest.raises(DependencyCycleError) as cycle:
            startup_order(manager, ["ping"])
        assert cycle.value.chain == ("ping", "pong", "ping")
        assert manager.state("needy") == PluginState.UNLOADED


async def test_start_plugins_raises_the_failure_of_a_plugin() -> None:
    async with PluginManager() as manager:
        manager.register(Faulty("faulty"))
        with pytest.raises(PluginInitError, match="no config"):
            await start_plugins(manager, ["faulty"])


def test_the_public_names_are_exactly_these_and_show_as_mofa_kernel_dora() -> None:
    import mofa_kernel.dora as public

    assert set(public.__all__) == {
        "ERROR_OUTPUT",
        "Format",
        "Node",
        "NodeServer",
        "OUT_OUTPUT",
        "ServeReport",
        "new_event_loop",
        "serve",
        "start_plugins",
        "startup_order",
    }
    for name in ("Node", "NodeServer", "ServeReport", "new_event_loop", "serve", "start_plugins"):
        assert getattr(public, name).__module__ == "mofa_kernel.dora"


def test_import_mofa_kernel_imports_neither_dora_nor_pyarrow() -> None:
    code = (
        "import sys, mofa_kernel; from mofa_kernel._cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('dora', 'pyarrow', 'mofa_kernel.dora') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def _quick() -> bool:
    import os

    return os.environ.get("MOFA_TEST_QUICK") == "1"
