"""An isolated plugin served by the dora serve loop, on the ``dora-node`` command's event loop.

No dora daemon: the node is the test double of tests/test_dora.py, fed by the
test. The plugin is a real distribution (a dist-info folder on ``sys.path``)
run in a real worker process, so the loop made by ``new_event_loop`` carries
the worker's pipes, the pidfd that tells its end, and its process group's
end. The real ``dora run`` is in tests/integration/test_dora_isolated_dataflow.py.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("dora.testing", reason="dora-rs 1.x (Python 3.11 and newer) is not installed")
pytest.importorskip("pyarrow")

from _fakesite import FakeSite, fake_site
from _isolated import FAULTY, running
from mofa_kernel import KernelEvent, PluginManager, PluginState
from mofa_kernel._config import KernelSettings, PluginSection
from mofa_kernel._isolation import IsolatedPlugin, WorkerSpec
from mofa_kernel.dora import NodeServer
from test_dora import Echo, FedNode, on_loop, payload, text

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="workers need pidfds; reads /proc")

#: Only how long a broken test may hang before it fails; no assertion depends on it.
PATIENCE = 60.0


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSite]:
    fake = next(fake_site(tmp_path, monkeypatch))
    fake.add("iso-faulty", plugins={"faulty": "isofaulty:Faulty"}, files={"isofaulty.py": FAULTY})
    yield fake
    fake.forget_modules()


class WatchedNode(FedNode):
    """A fed node that notes the isolated plugin's state each time the loop waits in ``next()``.

    The loop's own thread must not spend its waits in the node while the
    kernel awaits the plugin's worker (a restart's steps): it would notice the
    worker's answers only when the node's wait ends.
    """

    def __init__(self) -> None:
        super().__init__()
        self.manager: PluginManager | None = None
        self.states_in_next: list[PluginState] = []
        #: Set once the loop's own thread has waited in ``next()``.
        self.waited = threading.Event()

    def next(self, timeout: float | None = None) -> dict[str, Any] | None:
        if self.manager is not None and threading.current_thread() is threading.main_thread():
            self.states_in_next.append(self.manager.state("faulty"))
            self.waited.set()
        return super().next(timeout)


async def _reply(node: FedNode, count: int) -> tuple[str, str, dict[str, Any]]:
    """The ``count``-th reply, once it is there."""
    assert await asyncio.to_thread(node.wait_for_replies, count)
    output, data, metadata = node.sent[count - 1]
    return output, payload(data), metadata


@pytest.mark.parametrize("reading", ["thread", "loop"])
def test_an_isolated_plugin_crashes_is_restarted_and_serves_on_in_a_node(
    site: FakeSite, reading: str
) -> None:
    async def scenario() -> None:
        spec = WorkerSpec("faulty", "isofaulty:Faulty", grace=0.5)
        policy = PluginSection(max_restarts=1, restart_window=3600.0)
        manager = PluginManager(settings=KernelSettings(plugins={"faulty": policy}))
        runs: asyncio.Queue[None] = asyncio.Queue()

        def heard(event: KernelEvent) -> None:
            if getattr(event, "plugin_id", None) == "faulty" and (
                getattr(event, "new_state", None) == PluginState.RUNNING
            ):
                runs.put_nowait(None)

        manager.add_listener(heard)
        async with manager:
            manager.register(Echo("echo"))
            manager.register(await IsolatedPlugin.spawn(spec))
            await manager.load_all()
            await manager.start_all()
            await asyncio.wait_for(runs.get(), PATIENCE)
            node = WatchedNode()
            node.manager = manager
            served = asyncio.create_task(
                NodeServer(node, manager, plugins=["faulty", "echo"]).run()
            )
            if reading == "loop":  # idle: the loop's own thread waits in the node
                assert await asyncio.to_thread(node.waited.wait, PATIENCE)
            node.feed(text("pid", "faulty", request_id=1))
            output, first, _ = await _reply(node, 1)
            assert output == "out"
            node.feed(text("leak", "faulty", request_id=2))  # a child in the worker's group
            output, child, _ = await _reply(node, 2)
            assert output == "out"
            assert running(int(first))
            assert running(int(child))
            # The worker dies mid-call: that input is answered on error.
            node.feed(text("exit", "faulty", request_id=3))
            output, failure, metadata = await _reply(node, 3)
            assert (output, metadata) == ("error", {"request_id": 3, "plugin_id": "faulty"})
            assert json.loads(failure) == {
                "plugin_id": "faulty",
                "input_id": "faulty",
                "error": "plugin 'faulty': worker exited with code 1",
            }
            # The other plugin serves meanwhile; the policy brings the crashed one back.
            node.feed(text("x", "echo", request_id=4))
            assert await _reply(node, 4) == (
                "out",
                "echo:x",
                {"request_id": 4, "plugin_id": "echo"},
            )
            await asyncio.wait_for(runs.get(), PATIENCE)
            assert not running(int(first))
            assert not running(int(child))
            node.feed(text("pid", "faulty", request_id=5))
            output, second, _ = await _reply(node, 5)
            assert output == "out"
            assert second != first
            assert running(int(second))
            node.feed({"type": "STOP", "id": "MANUAL"})
            report = await asyncio.wait_for(served, PATIENCE)
        assert not running(int(second))  # shutting the manager down ended the worker
        assert (report.received, report.answered, report.failed) == (5, 4, 1)
        if reading == "loop":
            assert node.readers == {threading.get_ident()}  # no reader thread
            assert set(node.states_in_next) == {PluginState.RUNNING}

    on_loop(reading, scenario)
