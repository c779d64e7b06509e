"""The fault matrix: every hook, in both plugin styles, against every kind of fault.

Each cell runs a small host: the faulty plugin, ``child`` (needs it),
``grandchild`` (needs ``child``) and an unrelated ``bystander`` that a
background task keeps executing throughout. What each cell asserts depends on
its policy (see _matrix.py); the outcome of every cell goes into the table of
docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
import time
import warnings
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import pytest

from _fakesite import FakeSite
from mofa_kernel import (
    InvalidStateError,
    KernelEvent,
    PluginError,
    PluginEvent,
    PluginExecutionError,
    PluginLifecycleError,
    PluginLoadError,
    PluginManager,
    PluginState,
    PluginTimeoutError,
)
from mofa_kernel._config import KernelSettings, PluginSection
from mofa_kernel._isolation import IsolatedPlugin, WorkerExit, WorkerSpec

from . import _faults
from ._faults import (
    BLOCK_LIMIT,
    BLOCK_SECONDS,
    FAULTY_ID,
    TIMEOUT,
    Fault,
    Steady,
    fault_words,
    faulty_plugin,
    hook_word,
)
from ._matrix import CELLS, PROCESS_CELLS, Cell
from ._report import Collector

#: The deadline of the well-behaved plugins.
LONG = 5.0
#: Shutdown of a cell's host must finish within this many seconds. It takes well under one
#: second; the budget tells a hang from a loaded machine (two CPU hogs on two cores).
SHUTDOWN_BUDGET = 15.0
#: A whole cell (bring-up, fault, checks, shutdown) must finish within this many seconds.
CELL_BUDGET = 30.0
F = FAULTY_ID
RUNNING, PAUSED, UNLOADED = PluginState.RUNNING, PluginState.PAUSED, PluginState.UNLOADED
BRING_UP_HOOKS = ("load", "init_plugin", "start")


def _param(cell: Cell) -> Any:
    failure = cell.known_failure
    marks = []
    if failure is not None:
        reason = f"[{failure.tag}] expected: {failure.expected}; today: {failure.actual}"
        marks.append(pytest.mark.xfail(strict=True, reason=reason))
    return pytest.param(cell, id=cell.id, marks=marks)


class Host:
    """One cell's host: the manager, its plugins, the events it emitted.

    ``worker`` is the faulty plugin in a worker process, when the cell is one of those; it is
    never restarted there, so that the cell sees the fault's own outcome.
    """

    def __init__(self, style: str, fault: Fault, worker: IsolatedPlugin | None = None) -> None:
        self.fault = fault
        settings = KernelSettings(plugins={F: PluginSection(max_restarts=0)})
        self.manager = PluginManager(timeout=LONG, block_limit=BLOCK_LIMIT, settings=settings)
        self.events: list[KernelEvent] = []
        self.manager.add_listener(self.events.append)
        self.child = Steady("child", F)
        self.grandchild = Steady("grandchild", "child")
        self.bystander = Steady("bystander")
        self.plugin = worker if worker is not None else faulty_plugin(style, fault)

    def register_faulty(self) -> None:
        self.manager.register(self.plugin, timeout=TIMEOUT)

    def register_steady(self) -> None:
        for plugin in (self.child, self.grandchild, self.bystander):
            self.manager.register(plugin)

    def plugin_errors(self, plugin_id: str = F) -> list[str]:
        return [
            e.error
            for e in self.events
            if isinstance(e, PluginEvent.PluginError) and e.plugin_id == plugin_id
        ]


class Pinger:
    """Keeps executing the bystander in the background, counting answers and failures."""

    def __init__(self, manager: PluginManager) -> None:
        self.manager = manager
        self.answers = 0
        self.failures: list[str] = []
        self._task: asyncio.Task[None] | None = None
        self._answered: asyncio.Event | None = None

    async def _run(self) -> None:
        n = 0
        while True:
            if self.manager.state("bystander") != RUNNING:
                await asyncio.sleep(0.001)
                continue
            n += 1
            try:
                answer = await self.manager.execute("bystander", str(n))
            except PluginError as exc:
                self.failures.append(str(exc))
            else:
                if answer != f"bystander:{n}":
                    self.failures.append(f"wrong answer {answer!r} to {n}")
                self.answers += 1
                if self._answered is not None:
                    self._answered.set()
            await asyncio.sleep(0.001)

    async def next_answer(self) -> None:
        """Wait for the bystander's next answer (a second at most)."""
        assert self._answered is not None
        self._answered.clear()
        await asyncio.wait_for(self._answered.wait(), 1.0)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Pinger]:
        self._answered = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run())
        try:
            yield self
        finally:
            self._task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await self._task


async def _trigger(host: Host, hook: str) -> object:
    """Drive the manager into ``hook`` of the running faulty plugin; what the verb raised or
    returned."""
    manager = host.manager
    try:
        if hook == "pause":
            await manager.pause(F)
        elif hook == "resume":
            await manager.pause(F)
            await manager.resume(F)
        elif hook == "stop":
            await manager.stop(F)
        elif hook == "unload":
            for pid in ("grandchild", "child", F):
                await manager.stop(pid)
            await manager.unload(F)
        elif hook == "execute":
            return await manager.execute(F, "x")
        elif hook == "health_check":
            return await manager.health_check()
        elif hook == "stats":
            return await manager.stats()
        else:
            raise AssertionError(f"no trigger for {hook}")
    except PluginError as exc:
        return exc
    return None


def _check_verb_result(cell: Cell, result: object, message: str) -> None:
    """The verb that ran the faulty hook reported the same failure, with the right class."""
    hook, fault = cell.hook, cell.fault
    if hook == "health_check":
        assert isinstance(result, dict)
        assert result[F] is False
        assert result["bystander"] is True
        return
    if hook == "stats":
        assert isinstance(result, dict)
        assert message in result[F]["error"]
        assert "error" not in result["bystander"]
        return
    assert isinstance(result, PluginError), result
    assert str(result) == message
    assert result.plugin_id == F
    assert result.hook == hook
    if fault == "hang":
        assert isinstance(result, PluginTimeoutError)
        assert result.timeout == TIMEOUT
    elif hook == "execute":
        assert isinstance(result, PluginExecutionError)
    else:
        assert isinstance(result, PluginLifecycleError)


async def _check_rest_of_host(host: Host, pinger: Pinger, *, faulty_known: bool) -> None:
    """Dependents stay down and are skipped; the bystander serves; shutdown is prompt."""
    manager = host.manager
    for dependent in ("child", "grandchild"):
        assert manager.state(dependent) not in (RUNNING, PAUSED)
        with pytest.raises(InvalidStateError):
            await manager.execute(dependent, "x")
    again = await manager.start_all()
    for dependent in ("child", "grandchild"):
        outcome = again.outcomes[dependent]
        assert outcome.status == "skipped", outcome
        assert outcome.error is not None
        assert F in outcome.error
    assert again.outcomes["bystander"].status == "ok"
    assert manager.state("bystander") == RUNNING
    assert await manager.execute("bystander", "after") == "bystander:after"
    await pinger.next_answer()
    assert pinger.failures == []

    started = time.monotonic()
    await asyncio.wait_for(manager.shutdown(), SHUTDOWN_BUDGET)
    assert time.monotonic() - started < SHUTDOWN_BUDGET
    for pid in ("child", "grandchild", "bystander"):
        assert manager.state(pid) == UNLOADED
    assert host.bystander.steps[-2:] == ["stop", "unload"]
    if faulty_known:
        assert manager.state(F) not in (RUNNING, PAUSED)


async def _contained(cell: Cell, site: FakeSite) -> None:
    fault = Fault(cell.hook, cell.fault)
    worker = None
    exits: asyncio.Queue[WorkerExit] = asyncio.Queue()
    if cell.isolation == "process":
        # The same plugin, imported by a worker from an installed distribution: its Fault
        # object lives there, so the strikes are seen through what the host reports.
        spec = WorkerSpec(F, _add_faulty(site, cell), grace=0.5)
        worker = await IsolatedPlugin.spawn(spec, deadline=TIMEOUT)
        worker.on_worker_exit(exits.put_nowait)
    host = Host(cell.style, fault, worker)
    host.register_faulty()
    host.register_steady()
    manager = host.manager
    async with Pinger(manager).running() as pinger:
        first = await manager.start_all()
        if cell.hook in BRING_UP_HOOKS:
            outcome = first.outcomes[F]
            assert outcome.status == "failed", outcome
            result: object = outcome.error
            for dependent in ("child", "grandchild"):
                assert first.outcomes[dependent].status == "skipped"
        else:
            assert first.ok, first.outcomes
            answers_before = pinger.answers
            result = await _trigger(host, cell.hook)
            if cell.fault == "hang":
                # The loop kept turning while the plugin hung: the bystander kept answering.
                assert pinger.answers > answers_before
        await manager.settle()
        if worker is None:
            assert fault.strikes >= 1
        elif cell.fault == "hang" and cell.hook != "unload":  # unload ends the worker anyway
            # Nothing but ending the worker stops a call there: it was ended for its deadline.
            ended = await asyncio.wait_for(exits.get(), CELL_BUDGET)
            assert ended.cause == "deadline", ended
            assert worker.worker_pid is None

        state = manager.state(F)
        assert state.is_error, f"faulty is {state}, not in the error state"
        message = state.message
        assert message is not None
        assert hook_word(cell.style, cell.hook) in message
        for word in fault_words(cell.style, cell.hook, cell.fault):
            assert word in message
        assert message in host.plugin_errors()
        if cell.hook in BRING_UP_HOOKS:
            assert result == message
        else:
            _check_verb_result(cell, result, message)
        await _check_rest_of_host(host, pinger, faulty_known=True)


def _add_faulty(site: FakeSite, cell: Cell) -> str:
    """An installed distribution whose entry point ``faulty`` names the cell's plugin; the
    entry point."""
    module = f"faulty_entry_{cell.style}_{cell.fault}"
    text = (
        f"from {_faults.__name__} import Fault, faulty_plugin\n\n"
        f"plugin = faulty_plugin({cell.style!r}, Fault({cell.hook!r}, {cell.fault!r}))\n"
    )
    site.add("faulty-dist", plugins={F: f"{module}:plugin"}, files={f"{module}.py": text})
    return f"{module}:plugin"


async def _registration(cell: Cell, site: FakeSite) -> None:
    host = Host(cell.style, Fault(cell.hook, cell.fault))
    manager = host.manager
    refused: BaseException | None = None
    try:
        host.register_faulty()
    except BaseException as exc:  # noqa: BLE001 - the cell is about which exception comes out
        refused = exc
    assert isinstance(refused, PluginLoadError), repr(refused)
    words = (hook_word(cell.style, cell.hook), *fault_words(cell.style, cell.hook, cell.fault))
    for word in words:
        assert word in str(refused)
    assert F not in manager.plugin_ids()

    # The same plugin found through an entry point is recorded as failed, never started.
    _add_faulty(site, cell)
    try:
        report = manager.discover()
    except BaseException as exc:  # noqa: BLE001 - as above
        pytest.fail(f"discover() raised {exc!r}")
    (record,) = [r for r in report.records if r.plugin_id == F]
    assert record.status == "failed"
    assert record.state.is_error
    assert record.error is not None
    for word in words:
        assert word in record.error
    assert any(line.startswith(f"{F}: ") for line in report.errors)

    host.register_steady()
    async with Pinger(manager).running() as pinger:
        first = await manager.start_all()
        assert first.outcomes["bystander"].status == "ok"
        await _check_rest_of_host(host, pinger, faulty_known=False)


async def _metadata_not_a_fault(cell: Cell) -> None:
    host = Host(cell.style, Fault(cell.hook, cell.fault))
    started = time.monotonic()
    host.register_faulty()
    assert time.monotonic() - started >= BLOCK_SECONDS
    host.register_steady()
    manager = host.manager
    report = await manager.start_all()
    assert report.ok, report.outcomes
    assert await manager.execute(F, "x") == f"{F}:x"
    await asyncio.wait_for(manager.shutdown(), SHUTDOWN_BUDGET)
    assert manager.state(F) == UNLOADED


def _run_in_thread(main: Callable[[], Coroutine[Any, Any, None]], budget: float) -> BaseException:
    """``asyncio.run(main())`` in a thread of its own, as a host's main would; what it raised."""
    outcome: list[BaseException] = []

    def host() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001 - handed to the test to assert on
            outcome.append(exc)

    thread = threading.Thread(target=host, name="interrupted-host", daemon=True)
    thread.start()
    thread.join(budget)
    assert not thread.is_alive(), f"the host did not finish within {budget}s"
    assert outcome, "the host finished without an exception"
    return outcome[0]


def _propagates(cell: Cell) -> None:
    fault = Fault(cell.hook, cell.fault)
    host = Host(cell.style, fault)
    manager = host.manager
    expected: type[BaseException] = (
        KeyboardInterrupt if cell.fault == "keyboard_interrupt" else asyncio.CancelledError
    )

    if cell.hook == "plugin_metadata":
        with pytest.raises(expected):
            host.register_faulty()
        assert F not in manager.plugin_ids()

        async def after_refusal() -> None:
            host.register_steady()
            report = await manager.start_all()
            assert report.outcomes["bystander"].status == "ok"
            assert report.outcomes["child"].status == "skipped"
            assert await manager.execute("bystander", "x") == "bystander:x"
            await asyncio.wait_for(manager.shutdown(), SHUTDOWN_BUDGET)

        asyncio.run(after_refusal())
        return

    async def main() -> None:
        async with manager:
            host.register_faulty()
            host.register_steady()
            first = await manager.start_all()
            if cell.hook not in BRING_UP_HOOKS:
                assert first.ok, first.outcomes
                assert await manager.execute("bystander", "x") == "bystander:x"
                await _trigger(host, cell.hook)
        raise AssertionError("the fault did not propagate")

    started = time.monotonic()
    raised = _run_in_thread(main, CELL_BUDGET)
    assert isinstance(raised, expected), repr(raised)
    assert time.monotonic() - started < SHUTDOWN_BUDGET + BLOCK_SECONDS
    assert fault.strikes == 1
    assert host.plugin_errors() == []
    for pid in (F, "child", "grandchild", "bystander"):
        assert manager.state(pid) not in (RUNNING, PAUSED)
    assert manager.state("bystander") == UNLOADED
    assert host.bystander.steps[-2:] == ["stop", "unload"]


@pytest.mark.parametrize("cell", [_param(cell) for cell in CELLS])
def test_cell(
    cell: Cell, fake_site: FakeSite, monkeypatch: pytest.MonkeyPatch, tally: Collector
) -> None:
    # Discovery sees the fake distribution's plugin only; anything else installed stays
    # unimported.
    monkeypatch.setenv("MOFA_PLUGINS", F)
    policy = cell.policy()
    started = time.monotonic()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if policy == "contained":
            asyncio.run(asyncio.wait_for(_contained(cell, fake_site), CELL_BUDGET))
        elif policy == "registration":
            asyncio.run(asyncio.wait_for(_registration(cell, fake_site), CELL_BUDGET))
        elif policy == "not_a_fault":
            asyncio.run(asyncio.wait_for(_metadata_not_a_fault(cell), CELL_BUDGET))
        else:
            _propagates(cell)
        gc.collect()
    assert [str(w.message) for w in caught] == []
    assert time.monotonic() - started < CELL_BUDGET
    if policy in ("contained", "registration"):
        tally.count_fault_survived("matrix")


@pytest.mark.skipif(sys.platform != "linux", reason="workers need pidfds")
@pytest.mark.parametrize("cell", [_param(cell) for cell in PROCESS_CELLS])
def test_cell_in_a_worker(
    cell: Cell, fake_site: FakeSite, monkeypatch: pytest.MonkeyPatch, tally: Collector
) -> None:
    test_cell(cell, fake_site, monkeypatch, tally)


def test_every_cell_is_in_the_matrix() -> None:
    assert len(CELLS) == 2 * 11 * 7
    assert len(PROCESS_CELLS) == 9 * 2
    ids = {cell.id for cell in (*CELLS, *PROCESS_CELLS)}
    assert len(ids) == len(CELLS) + len(PROCESS_CELLS)


def test_the_document_shows_the_expected_matrix() -> None:
    from ._report import DOC, expected_matrix_region, read_region

    assert read_region(DOC.read_text(encoding="utf-8"), "matrix") == expected_matrix_region(), (
        f"{DOC} is out of date: run MOFA_WRITE_RELIABILITY=1 pytest tests/reliability"
    )
