"""The faults only a process can contain, each run in a real host process, inline and isolated.

Each case starts a host (a Python process of its own, so that a fault that
ends or freezes it cannot take the test run along) that discovers the faulty
plugin from an installed distribution, with ``isolation`` set to ``inline``
or ``process``, and registers an inline ``bystander``. The host reports
every step as a JSON line on stdout. A host held by a fault is recognised by
the line it printed just before it (the plugin emits an event before it
spins) and by not ending afterwards; no case sleeps. The outcomes fill the
table "Faults only a process can contain" in docs/reliability.md
(_process_faults.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from _fakesite import FakeSite
from _isolated import FAULTY, running

from ._process_faults import ISOLATIONS, ROWS, RUNNER, all_passed, render_process_faults
from ._report import DOC, WRITE_ENV, read_region

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc; pidfds")

ROOT = Path(__file__).resolve().parents[2]
#: Not a timing assertion: only how long a broken case may take before it fails.
PATIENCE = 60.0
#: How long a host held by a fault must stay held after it said so. Its fault holds it for
#: good, so a busy machine cannot end it sooner; two seconds is twice the deadline that
#: could not fire.
HELD = 2.0

HOST = r"""
import asyncio
import json
import os
import sys

from mofa_kernel import AgentPlugin, PluginError, PluginManager, PluginMetadata, PluginType

INPUTS = {"exit": "exit", "segv": "segv", "sys.exit": "sys.exit", "spin": "spin"}


def say(**what):
    print(json.dumps(what), flush=True)


def running(pid):
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return False
    return fields[0] not in ("Z", "X")


def resident_mib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024


class Bystander(AgentPlugin):
    metadata = PluginMetadata("bystander", "Bystander", PluginType.TOOL)

    async def execute(self, input):
        return "bystander " + input


async def main(key):
    manager = PluginManager.from_config("mofa.toml")
    waiting = asyncio.get_running_loop().create_future()

    def heard(event):
        name = getattr(event, "event_type", None)
        if name is not None:
            say(about_to=name)
            if name == "wait" and not waiting.done():
                waiting.set_result(None)

    manager.add_listener(heard)
    manager.register(Bystander())
    manager.discover()
    report = await manager.start_all()
    worker = getattr(manager.get("faulty"), "worker_pid", None)
    exited = asyncio.get_running_loop().create_future()
    if worker is not None:  # how the worker ended, when it ends unasked
        manager.get("faulty").on_worker_exit(
            lambda ended: exited.done() or exited.set_result(str(ended))
        )
    say(ready=os.getpid(), worker=worker, start=report.outcomes["faulty"].error)
    if key == "cancel":
        call = asyncio.ensure_future(manager.execute("faulty", "wait"))
        await waiting
        call.cancel()
        try:
            await call
        except asyncio.CancelledError:
            say(cancelled=True)
        say(pid=int(await manager.execute("faulty", "pid")))
    elif key == "leak":
        child = int(await manager.execute("faulty", "leak"))
        await manager.stop("faulty")
        await manager.unload("faulty")
        say(child=child, child_running=running(child), worker_running=running(worker or 0))
    elif key == "hog":
        before = resident_mib()
        kept = await manager.execute("faulty", "hog-and-keep")
        say(kept=kept, host_growth=resident_mib() - before)
        try:
            await manager.execute("faulty", "hog")
        except PluginError as exc:
            say(error=str(exc))
    elif key in INPUTS:
        try:
            say(output=await manager.execute("faulty", INPUTS[key]))
        except PluginError as exc:
            say(error=str(exc), kind=type(exc).__name__)
        if key == "spin" and worker is not None:
            say(worker_exit=await asyncio.wait_for(exited, 60))
        say(state=manager.state("faulty").message, worker_running=running(worker or 0))
    say(bystander=await manager.execute("bystander", "x"))
    await manager.shutdown()
    say(done=True)


asyncio.run(main(sys.argv[1]))
"""


class HostRun:
    """A host process and the JSON lines it has printed so far."""

    def __init__(self, work: Path, key: str, env: dict[str, str]) -> None:
        self.stderr = (work / "stderr.txt").open("w+", encoding="utf-8")
        self.process = subprocess.Popen(
            [sys.executable, "-c", HOST, key],
            cwd=work,
            env=env,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            start_new_session=True,  # so that the test can end whatever the host left
        )
        self.lines: list[dict[str, Any]] = []
        #: How many of :attr:`lines` :meth:`until` has looked at; bytes of a partial line.
        self.seen = 0
        self.pending = b""
        self.others: list[int] = []

    def until(self, matches: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """Read lines until one matches; fails if the host ends or falls silent first."""
        for line in self.lines[self.seen :]:
            self.seen += 1
            if matches(line):
                return line
        stdout = self.process.stdout
        assert stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(stdout, selectors.EVENT_READ)
            limit = time.monotonic() + PATIENCE
            while True:
                if not selector.select(max(limit - time.monotonic(), 0)):
                    pytest.fail(f"the host said nothing for {PATIENCE}s: {self.lines}")
                data = os.read(stdout.fileno(), 1 << 16)
                if not data:
                    pytest.fail(f"the host ended: {self.lines}; stderr: {self.errors()}")
                self.pending += data
                *complete, self.pending = self.pending.split(b"\n")
                self.lines += [json.loads(text) for text in complete]
                for line in self.lines[self.seen :]:
                    self.seen += 1
                    if matches(line):
                        return line

    def finish(self) -> int:
        """Read the rest of the output and the exit status."""
        stdout = self.process.stdout
        assert stdout is not None
        while data := os.read(stdout.fileno(), 1 << 16):
            self.pending += data
        self.lines += [json.loads(text) for text in self.pending.splitlines()]
        self.pending = b""
        return self.process.wait(PATIENCE)

    def held(self) -> bool:
        """Whether the host is still running :data:`HELD` seconds from now."""
        try:
            self.process.wait(HELD)
        except subprocess.TimeoutExpired:
            return True
        return False

    def value(self, key: str) -> Any:
        (found,) = [line[key] for line in self.lines if key in line]
        return found

    def errors(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read()

    def end(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        for pid in self.others:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.stderr.close()


@pytest.fixture
def host(fake_site: FakeSite, tmp_path: Path) -> Iterator[Callable[[str, str], HostRun]]:
    fake_site.add("iso-faulty", plugins={"faulty": "isofaulty:Faulty"},
                  files={"isofaulty.py": FAULTY})  # fmt: skip
    runs: list[HostRun] = []

    def start(key: str, isolation: str) -> HostRun:
        timeout = 1.0 if key.startswith("spin") else 10.0
        config = f'[kernel]\nisolation = "{isolation}"\ntimeout = {timeout}\n'
        config += "[plugins.faulty]\nmax_restarts = 0\n"
        if isolation == "process" and key == "hog":
            config += "memory_limit = 256\n"
        if key == "spin-start":
            config += '[plugins.faulty.settings]\nhang = "start"\n'
        work = Path.cwd()
        (work / "mofa.toml").write_text(config, encoding="utf-8")
        env = dict(os.environ, MOFA_PLUGINS="faulty")
        env["PYTHONPATH"] = os.pathsep.join([str(fake_site.root), *sys.path])
        run = HostRun(work, key, env)
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.end()


def _served_on(run: HostRun) -> None:
    """The host and the bystander carried on, and the host left cleanly."""
    assert run.finish() == 0, run.errors()
    assert run.value("bystander") == "bystander x"
    assert run.value("done") is True


def _check(key: str, isolation: str, run: HostRun) -> None:
    ready = run.until(lambda line: "ready" in line or "about_to" in line)
    if key == "spin-start":
        if isolation == "inline":
            assert ready == {"about_to": "hang"}
            assert run.held()  # start_all() never returns: the loop is the plugin's
        else:
            assert ready == {"about_to": "hang"}  # said by the worker, through the host's loop
            ready = run.until(lambda line: "ready" in line)
            assert ready["start"] == "start timed out after 1s"
            _served_on(run)
        return
    assert "ready" in ready, ready
    worker = ready["worker"]
    assert (worker is None) == (isolation == "inline")
    inline = isolation == "inline"
    if key in ("exit", "segv"):
        if inline:
            status = run.finish()
            assert status == (1 if key == "exit" else -signal.SIGSEGV)
            assert run.lines == [ready]  # nothing more: no error, no shutdown
            assert run.errors() == ""
        else:
            ending = "exited with code 1" if key == "exit" else "killed by SIGSEGV"
            run.until(lambda line: "state" in line)
            assert run.value("error") == f"plugin 'faulty': worker {ending}"
            assert run.value("state") == f"worker {ending}"
            assert run.value("worker_running") is False
            _served_on(run)
    elif key == "sys.exit":
        run.until(lambda line: "state" in line)
        assert re.fullmatch(
            r"execute failed: SystemExit: 4 \(isofaulty\.py:\d+\)", run.value("error")
        )
        assert run.value("kind") == "PluginExecutionError"
        assert run.value("state") == run.value("error")
        assert run.value("worker_running") is (not inline)  # lives on; inline there is none
        _served_on(run)
    elif key == "spin":
        if inline:
            run.until(lambda line: line == {"about_to": "spin"})
            assert run.held()  # the deadline (1 s) cannot fire: the loop is the plugin's
        else:
            assert run.until(lambda line: "error" in line)["error"] == "execute timed out after 1s"
            assert run.value("kind") == "PluginTimeoutError"
            ended = run.until(lambda line: "worker_exit" in line)["worker_exit"]
            assert ended == "worker ended: execute overran its deadline (1s)"
            run.until(lambda line: "state" in line)
            assert run.value("worker_running") is False
            _served_on(run)
    elif key == "hog":
        kept = run.until(lambda line: "kept" in line)
        assert 128 < int(kept["kept"].split()[1]) < 256
        assert kept["host_growth"] < 64  # the worker holds it; the host does not
        assert run.until(lambda line: "error" in line)["error"].startswith(
            "execute failed: MemoryError"
        )
        _served_on(run)
    elif key == "leak":
        if inline:
            left = run.until(lambda line: "child" in line)
            run.others.append(left["child"])
            assert left["child_running"] is True
            run.until(lambda line: "done" in line)
            assert run.held()  # the interpreter waits for the plugin's thread at exit
            run.process.kill()  # the host alone, not its process group
            run.process.wait()
            assert running(left["child"])  # and the child outlives the host
        else:
            left = run.until(lambda line: "child" in line)
            assert left["child_running"] is False
            assert left["worker_running"] is False
            _served_on(run)
    elif key == "cancel":
        assert run.until(lambda line: "cancelled" in line) == {"cancelled": True}
        assert run.until(lambda line: "pid" in line)["pid"] == (worker or ready["ready"])
        _served_on(run)
    else:
        raise AssertionError(f"no check for {key}")


def _cells() -> list[Any]:
    return [
        pytest.param(row.key, isolation, id=row.cell_id(isolation))
        for row in ROWS
        for isolation in ISOLATIONS
        if row.cell_id(isolation) in row.cell_ids()
    ]


@pytest.mark.parametrize(("key", "isolation"), _cells())
def test_fault_in_a_host(key: str, isolation: str, host: Callable[[str, str], HostRun]) -> None:
    _check(key, isolation, host(key, isolation))


def test_the_document_shows_the_process_faults_table() -> None:
    shown = read_region(DOC.read_text(encoding="utf-8"), "process-faults")
    assert shown == render_process_faults(all_passed()), (
        f"docs/reliability.md is out of date: run the reliability suite with {WRITE_ENV}=1 "
        "or paste render_process_faults(all_passed())"
    )


@pytest.mark.parametrize(
    "reference",
    sorted({RUNNER} | {test for row in ROWS for test in row.process_tests}),
)
def test_every_test_the_table_names_exists(reference: str) -> None:
    path, _, name = reference.partition("::")
    source = (ROOT / path).read_text(encoding="utf-8")
    assert re.search(rf"^(async )?def {re.escape(name)}\(", source, re.MULTILINE), reference


def test_every_row_is_run_in_both_isolations_unless_it_says_why_not() -> None:
    for row in ROWS:
        expected = 1 if row.inline_not_run else 2
        assert len(row.cell_ids()) == expected, row
    assert len({row.key for row in ROWS}) == len(ROWS)
