"""A concurrency soak: many concurrent executes over many plugins while others churn.

Serving plugins only ever answer. Churning plugins are paused, resumed,
stopped, started and hot-reloaded while calls reach them; fragile plugins
reject some inputs (and stay running) and crash on others (and are repaired:
unloaded, loaded, started). Each round checks that every call got exactly one
outcome (an answer, or a documented error), that the plugin ran it once
(never for a refused call), that the round ended in time, and that a slow
event subscriber lost exactly what its dropped count says. Across rounds,
traced memory must stay flat: the typical (median) growth from one round to
the next stays under a limit. A leak grows memory every round; a one-off
step (a table resized, CPython interning names) moves one round only, and
the median ignores it.

Sizes: ``MOFA_TEST_QUICK=1`` (CI) is quick, ``MOFA_RELIABILITY_FULL=1`` is the
full soak; see docs/reliability.md for the commands.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import importlib
import itertools
import random
import statistics
import sys
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import attrs
import pytest

from mofa_kernel import (
    AgentPlugin,
    InvalidStateError,
    KernelEvent,
    PluginError,
    PluginExecutionError,
    PluginManager,
    PluginMetadata,
    PluginState,
    PluginType,
)

from ._report import Collector, run_mode

pytestmark = pytest.mark.slow

RUNNING, PAUSED, LOADED = PluginState.RUNNING, PluginState.PAUSED, PluginState.LOADED


@attrs.frozen
class Size:
    serving: int
    churning: int
    fragile: int
    rounds: int
    calls: int  # per round
    concurrency: int
    #: The limit on the median growth of traced memory from one round to the next.
    memory_limit_kib: int
    #: A hang guard, not a speed test: a round takes a second or two on a loaded machine.
    round_budget: float


SIZES: Final = {
    "quick": Size(16, 4, 2, 8, 3_000, 64, 64, 60.0),
    "default": Size(32, 6, 2, 10, 8_000, 128, 64, 90.0),
    "full": Size(100, 12, 4, 30, 50_000, 512, 64, 240.0),
}
SLOW_SUBSCRIBER_SIZE: Final = 16
#: Memory the import system keeps for itself is not the kernel's: a reload compiles code,
#: and CPython's table of interned names grows in steps there (once, by about 1 MB, around
#: the 250th reload of the full soak) and then stays put.
IMPORT_SYSTEM: Final = (
    tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
    tracemalloc.Filter(False, "<frozen importlib._bootstrap_external>"),
)

#: Invocations per call token, over every instance of every plugin (reloads included).
SEEN: collections.Counter[str] = collections.Counter()


def _echo(plugin_id: str, text: str) -> str:
    return f"{plugin_id}|{text}"


async def _work(text: str) -> None:
    """Suspend zero, one or two times, so that calls interleave."""
    for _ in range(len(text) % 3):
        await asyncio.sleep(0)


class Serving(AgentPlugin):
    """Answers every call."""

    def __init__(self, plugin_id: str) -> None:
        self.metadata = PluginMetadata(plugin_id, plugin_id, PluginType.TOOL)

    async def execute(self, input: str) -> str:
        SEEN[input] += 1
        await _work(input)
        return _echo(self.metadata.id, input)


class Fragile(Serving):
    """Rejects ``reject`` inputs (and stays running); crashes on ``crash`` inputs."""

    async def execute(self, input: str) -> str:
        SEEN[input] += 1
        await _work(input)
        if input.startswith("reject"):
            raise PluginExecutionError(f"rejected {input}")
        if input.startswith("crash"):
            raise RuntimeError(f"crashed on {input}")
        return _echo(self.metadata.id, input)


CHURN_MODULE = '''\
"""A plugin that the soak reloads while calls reach it (generation {generation})."""

import asyncio

from mofa_kernel import AgentPlugin, PluginMetadata, PluginType

from {soak} import SEEN, _echo, _work


class Churning(AgentPlugin):
    metadata = PluginMetadata({plugin_id!r}, "Churning", PluginType.TOOL)

    async def execute(self, input):
        SEEN[input] += 1
        await _work(input)
        return _echo({plugin_id!r}, input)


plugin = Churning()
'''


@attrs.define
class Tally:
    calls: int = 0
    answered: int = 0
    refused: int = 0
    rejected: int = 0
    faults: int = 0
    transitions: int = 0
    reloads: int = 0
    longest_round: float = 0.0


class Soak:
    """One manager, its plugins and the bookkeeping of one soak."""

    def __init__(self, size: Size, modules: Path) -> None:
        self.size = size
        self.manager = PluginManager(timeout=10.0)
        self.serving = [f"serving-{i}" for i in range(size.serving)]
        self.churning = [f"churning-{i}" for i in range(size.churning)]
        self.fragile = [f"fragile-{i}" for i in range(size.fragile)]
        self.tally = Tally()
        self.repair_wanted = asyncio.Event()
        self.reloadable = hasattr(self.manager, "reload")
        for pid in self.serving:
            self.manager.register(Serving(pid))
        for pid in self.fragile:
            self.manager.register(Fragile(pid))
        for pid in self.churning:
            name = "soak_" + pid.replace("-", "_")
            text = CHURN_MODULE.format(generation=0, soak=__name__, plugin_id=pid)
            (modules / f"{name}.py").write_text(text, encoding="utf-8")
            self.manager.register(importlib.import_module(name).plugin)

    def plan(self, rng: random.Random, round_no: int) -> list[tuple[str, str]]:
        """This round's calls: (plugin id, unique input)."""
        targets = [*self.serving, *self.churning, *self.fragile]
        weights = [4] * len(self.serving) + [3] * len(self.churning) + [3] * len(self.fragile)
        calls = []
        for n, pid in enumerate(rng.choices(targets, weights, k=self.size.calls)):
            kind = "call"
            if pid in self.fragile:
                kind = rng.choices(["call", "reject", "crash"], [90, 8, 2])[0]
            calls.append((pid, f"{kind}-{round_no}-{n}"))
        return calls

    async def call(self, pid: str, text: str, outcomes: dict[str, str]) -> None:
        failure: PluginError | None = None
        try:
            answer = await self.manager.execute(pid, text)
        except (InvalidStateError, PluginExecutionError) as exc:
            failure = exc
        if failure is None:
            assert answer == _echo(pid, text), (pid, text, answer)
            outcome = "answered"
        elif isinstance(failure, InvalidStateError):
            outcome = "refused"
        else:
            assert failure.plugin_id == pid
            outcome = "rejected" if text.startswith("reject") else "fault"
            if outcome == "fault":
                self.repair_wanted.set()
        assert text not in outcomes, f"{text} got a second outcome"
        outcomes[text] = outcome

    async def workers(self, calls: list[tuple[str, str]], outcomes: dict[str, str]) -> None:
        queue: collections.deque[tuple[str, str]] = collections.deque(calls)

        async def worker() -> None:
            while queue:
                pid, text = queue.popleft()
                await self.call(pid, text, outcomes)

        await asyncio.gather(*(worker() for _ in range(self.size.concurrency)))

    async def churn(self, rng: random.Random, stop: asyncio.Event) -> None:
        """Pause, resume, stop, start and reload churning plugins until ``stop`` is set."""
        manager = self.manager
        while not stop.is_set():
            pid = rng.choice(self.churning)
            state = manager.state(pid)
            if state == RUNNING:
                move = rng.choice(
                    ["pause", "stop", "reload"] if self.reloadable else ["pause", "stop"]
                )
            elif state == PAUSED:
                move = rng.choice(["resume", "stop"])
            else:
                assert state == LOADED, f"{pid} is {state}"
                move = "start"
            if move == "reload":
                assert await manager.reload(pid, force=True) is True
                self.tally.reloads += 1
            else:
                await getattr(manager, move)(pid)
                self.tally.transitions += 1
            await asyncio.sleep(0)

    async def repair(self, stop: asyncio.Event) -> None:
        """Bring crashed fragile plugins back: unload (the cleanup), load, start."""
        while not stop.is_set():
            waiting = asyncio.ensure_future(self.repair_wanted.wait())
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
            waiting.cancel()
            stopping.cancel()
            self.repair_wanted.clear()
            await self.repair_now()

    async def repair_now(self) -> None:
        manager = self.manager
        for pid in self.fragile:
            if manager.state(pid).is_error:
                await manager.settle()
                await manager.unload(pid)
                await manager.load(pid)
                await manager.start(pid)

    async def bring_everything_up(self) -> None:
        await self.repair_now()
        for pid in self.churning:
            if self.manager.state(pid) == PAUSED:
                await self.manager.resume(pid)
            elif self.manager.state(pid) == LOADED:
                await self.manager.start(pid)


def check_round(soak: Soak, calls: list[tuple[str, str]], outcomes: dict[str, str]) -> None:
    """Every call got exactly one outcome, and the plugin ran it once or (refused) never."""
    assert len(outcomes) == len(calls), f"{len(calls) - len(outcomes)} calls lost"
    for pid, text in calls:
        outcome = outcomes[text]
        assert SEEN[text] == (0 if outcome == "refused" else 1), (pid, text, outcome, SEEN[text])
        if pid in soak.serving:
            assert outcome == "answered", (pid, text, outcome)
    counts = collections.Counter(outcomes.values())
    tally = soak.tally
    tally.calls += len(calls)
    tally.answered += counts["answered"]
    tally.refused += counts["refused"]
    tally.rejected += counts["rejected"]
    tally.faults += counts["fault"]


@pytest.fixture
def plugin_modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder on ``sys.path`` for the churning plugins' modules, forgotten afterwards."""
    folder = tmp_path / "modules"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    yield folder
    for name in [n for n in sys.modules if n.startswith("soak_")]:
        del sys.modules[name]


class Events:
    """Every event of the soak as a listener saw it, and a slow and a fast subscriber."""

    def __init__(self, manager: PluginManager) -> None:
        self.emitted: list[KernelEvent] = []
        manager.add_listener(self.emitted.append)
        self.slow = manager.events(maxsize=SLOW_SUBSCRIBER_SIZE)
        self.fast = manager.events(maxsize=1_000_000)
        self.fast_received = 0
        self.slow_dropped = 0
        self.slow_missed = 0
        self._fast_task = asyncio.ensure_future(self._consume_fast())

    async def _consume_fast(self) -> None:
        async for _ in self.fast:
            self.fast_received += 1

    def start_round(self) -> int:
        """Empty the slow subscriber's queue; its dropped count so far."""
        while self.slow.get_nowait() is not None:
            pass
        self.emitted.clear()
        return self.slow.dropped

    def check_round(self, dropped_before: int) -> None:
        """The slow subscriber read nothing during the round: it holds the newest events, and
        its dropped count grew by exactly what it missed."""
        received = []
        while (event := self.slow.get_nowait()) is not None:
            received.append(event)
        assert len(received) <= SLOW_SUBSCRIBER_SIZE
        assert received == self.emitted[len(self.emitted) - len(received) :]
        dropped = self.slow.dropped - dropped_before
        missed = len(self.emitted) - len(received)
        assert dropped == missed
        self.slow_dropped += dropped
        self.slow_missed += missed
        self.emitted.clear()

    async def close(self) -> None:
        self.fast.close()
        self.slow.close()
        await asyncio.wait_for(self._fast_task, 5.0)


async def run_round(soak: Soak, events: Events, round_no: int) -> None:
    """One round: the calls, the churn and the repairs; then every check of the round."""
    rng = random.Random(f"soak-{round_no}")  # noqa: S311 - a reproducible schedule, no secret
    calls = soak.plan(rng, round_no)
    outcomes: dict[str, str] = {}
    dropped_before = events.start_round()
    stop = asyncio.Event()
    started = time.monotonic()

    async def play() -> None:
        helpers = [
            asyncio.ensure_future(soak.churn(rng, stop)),
            asyncio.ensure_future(soak.repair(stop)),
        ]
        try:
            await soak.workers(calls, outcomes)
        finally:
            stop.set()
            await asyncio.gather(*helpers)
        await soak.manager.settle()
        await soak.bring_everything_up()

    await asyncio.wait_for(play(), soak.size.round_budget)
    soak.tally.longest_round = max(soak.tally.longest_round, time.monotonic() - started)
    check_round(soak, calls, outcomes)
    events.check_round(dropped_before)
    SEEN.clear()


def growth_per_round_kib(samples: list[int]) -> float:
    """The median growth of traced memory from one round to the next, from round 2 on (the
    first round warms the caches up), in KiB."""
    steps = [(later - earlier) / 1024 for earlier, later in itertools.pairwise(samples[1:])]
    return statistics.median(steps)


def traced_memory() -> int:
    """Bytes allocated now and still alive, outside the import system's own tables."""
    gc.collect()
    snapshot = tracemalloc.take_snapshot().filter_traces(IMPORT_SYSTEM)
    return sum(stat.size for stat in snapshot.statistics("filename"))


async def test_soak(plugin_modules: Path, tally: Collector) -> None:
    size = SIZES[run_mode()]
    soak = Soak(size, plugin_modules)
    manager = soak.manager
    SEEN.clear()
    events = Events(manager)
    report = await manager.start_all()
    assert report.ok, report.errors()

    memory: list[int] = []
    tracemalloc.start()
    try:
        for round_no in range(size.rounds):
            await run_round(soak, events, round_no)
            memory.append(traced_memory())
    finally:
        tracemalloc.stop()

    await asyncio.wait_for(manager.shutdown(), 10.0)
    await events.close()
    for pid in manager.plugin_ids():
        assert manager.state(pid) == PluginState.UNLOADED

    # Memory is flat once the first round has warmed the caches up: judged by the trend.
    growth_kib = (memory[-1] - memory[1]) / 1024
    per_round_kib = growth_per_round_kib(memory)
    assert per_round_kib < size.memory_limit_kib, memory
    # Nothing is lost silently: the slow subscriber's drops are counted, the fast one lost none.
    stats = manager.kernel_stats()
    assert events.slow_dropped > 0
    assert events.slow_dropped == events.slow_missed
    assert events.fast.dropped == 0
    assert events.fast_received == stats["events_emitted"]
    assert stats["events_dropped"] == events.slow.dropped
    t = soak.tally
    assert t.calls == size.calls * size.rounds
    assert t.answered > 0
    assert t.refused > 0
    assert t.faults > 0
    assert t.transitions > 0

    tally.soak.update(
        calls=t.calls,
        plugins=size.serving + size.churning + size.fragile,
        rounds=size.rounds,
        answered=t.answered,
        refused=t.refused + t.rejected + t.faults,
        lost=0,
        duplicated=0,
        transitions=t.transitions,
        reloads=t.reloads,
        faults=t.faults,
        longest_round=t.longest_round,
        memory_growth_kib=growth_kib,
        memory_per_round_kib=per_round_kib,
        memory_limit_kib=size.memory_limit_kib,
        events=stats["events_emitted"],
        slow_maxsize=SLOW_SUBSCRIBER_SIZE,
        slow_dropped=events.slow_dropped,
        fast_dropped=events.fast.dropped,
    )
    tally.count_fault_survived("soak", t.faults)


def test_memory_is_judged_by_its_trend_not_by_one_step() -> None:
    kib = 1024
    flat_with_a_step = [0, 900, 905, 5_900, 5_902, 5_899, 5_903, 5_904]  # one 5 MB step
    assert growth_per_round_kib([v * kib for v in flat_with_a_step]) < 8
    leaking = [0, 900, 1_000, 1_100, 1_200, 1_300, 1_400, 1_500]  # 100 KiB every round
    assert growth_per_round_kib([v * kib for v in leaking]) == 100


def test_sizes_grow_with_the_mode() -> None:
    quick, default, full = SIZES["quick"], SIZES["default"], SIZES["full"]
    assert quick.calls * quick.rounds < default.calls * default.rounds < full.calls * full.rounds


class Brisk(AgentPlugin):
    """Spends 2 ms per call without awaiting: 0.2% of the block limit below."""

    metadata = PluginMetadata("brisk", "Brisk", PluginType.TOOL)

    async def execute(self, input: str) -> str:
        time.sleep(0.002)  # noqa: ASYNC251 - a short synchronous step, as real plugins have
        return input


async def test_a_busy_loop_is_not_a_blocked_loop() -> None:
    # A limit far above one call's 2 ms: on a loaded machine a 2 ms step can take several
    # times as long, and the loop may not run for a while, but never for a whole second.
    limit = 1.0
    manager = PluginManager(block_limit=limit)
    manager.register(Brisk())
    await manager.start_all()
    answers = await asyncio.gather(*(manager.execute("brisk", str(n)) for n in range(400)))
    assert answers == [str(n) for n in range(400)]
    # The monitor hands incidents over at its heartbeat, every limit / 4 seconds.
    await asyncio.sleep(limit)
    state = manager.state("brisk")
    await manager.shutdown()
    assert state == RUNNING, state
