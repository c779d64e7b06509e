"""An isolated plugin served by a kernel node in a real ``dora run`` dataflow.

The node serves ``fragile`` with ``isolation = "process"`` (the configuration
docs/dora.md shows) beside the sample calculator, inline. Both are real
wheels installed by pip into a folder on the nodes' ``PYTHONPATH``. The test
follows the dataflow's output: the sender says what it heard, the plugin's
worker says when the host has it running again, and the test paces the
sender through a fifo; nothing waits on a clock.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Final

import pytest

pytest.importorskip("dora.testing", reason="dora-rs 1.x (Python 3.11 and newer) is not installed")

import tomllib  # Python 3.11 and newer, as dora-rs is
from _wheels import build_wheel
from test_dora_dataflow import _dora, same_as

from _isolated import running

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(sys.platform != "linux", reason="workers need pidfds; reads /proc"),
]

ROOT = Path(__file__).resolve().parents[2]
#: The configuration and the dataflow docs/dora.md shows.
DATAFLOW = ROOT / "docs" / "dataflow"
CALCULATOR = ROOT / "sample_plugins" / "calculator" / "src"
#: The distribution of the isolation page's fragile plugin (docs/isolation.md).
FRAGILE_TOOLS = ROOT / "docs" / "examples" / "isolation"
BIN = Path(sys.executable).parent
#: Only how long a broken run may hang before it fails; no assertion depends on it.
PATIENCE: Final = 300

#: The isolated plugin: its worker crashes on ``crash``, leaves a child in its process group
#: on ``child``, and says on stdout when the host has it running (it hears the host's events).
FRAGILE = """\
import os
import subprocess

from mofa_kernel import AgentPlugin, PluginMetadata, PluginState, PluginType, hookimpl


class Fragile(AgentPlugin):
    metadata = PluginMetadata("fragile", "Fragile", PluginType.TOOL)

    def __init__(self):
        self.children = []

    @hookimpl
    def on_plugin_event(self, event):
        if getattr(event, "plugin_id", None) == "fragile" and getattr(
            event, "new_state", None
        ) == PluginState.RUNNING:
            print("fragile running in worker", os.getpid(), flush=True)

    async def execute(self, input):
        if input == "pid":
            return str(os.getpid())
        if input == "child":
            self.children.append(subprocess.Popen(["sleep", "3600"]))
            return str(self.children[-1].pid)
        if input == "crash":
            os._exit(3)
        return "fragile: " + input
"""

#: Asks the kernel node one request at a time and prints each reply; before its last two
#: requests it waits until the test writes to the fifo ``go``.
PROBER = """\
import pyarrow as pa
from dora import Node

node = Node()
sent = 0


def ask(output, text):
    global sent
    sent += 1
    node.send_output(output, pa.array([text]), {"request_id": sent})
    while True:
        event = node.next()
        if event is None or event["type"] == "STOP":
            raise SystemExit(f"the dataflow stopped before request {sent} was answered")
        if event["type"] == "INPUT" and event["metadata"].get("request_id") == sent:
            reply = event["value"][0].as_py()
            print("prober heard", event["id"], sent, reply, flush=True)
            return


ask("fragile", "pid")
ask("fragile", "child")
ask("fragile", "crash")
ask("calculator", "6 * 7")
with open("go") as go:  # a fifo: the test writes once the plugin runs again
    go.read()
ask("fragile", "pid")
ask("fragile", "child")
print("prober done", flush=True)
for event in node:  # until the kernel node has gone and the inputs close
    pass
"""

# The kernel node under its own pid, written down first so that the test can signal it.
KERNEL = """\
import os
import pathlib
import sys

pathlib.Path("kernel.pid").write_text(str(os.getpid()))
os.execvp("mofa-kernel", ["mofa-kernel", *sys.argv[1:]])
"""


def _files(root: Path) -> dict[str, str]:
    return {
        path.relative_to(root).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(root.rglob("*.py"))
    }


def _install(target: Path, *wheels: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--no-deps", "--no-index", "--target", str(target), *map(str, wheels)],
        check=True,
    )  # fmt: skip
    return target


@pytest.fixture(scope="module")
def calculator(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample calculator's wheel."""
    _dora()  # without the dora command there is nothing to build for
    return build_wheel(
        tmp_path_factory.mktemp("calculator"),
        name="mofa-sample-calculator",
        version="0.1.0",
        files=_files(CALCULATOR),
        plugins={"calculator": "mofa_sample_calculator:CalculatorPlugin"},
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, calculator: Path) -> Path:
    """This module's ``fragile`` and the sample calculator, installed by pip into a folder."""
    base = tmp_path_factory.mktemp("dora-isolation")
    fragile = build_wheel(
        base / "wheels",
        name="mkt-fragile",
        files={"mkt_fragile.py": FRAGILE},
        plugins={"fragile": "mkt_fragile:Fragile"},
    )
    return _install(base / "site", fragile, calculator)


@pytest.fixture(scope="module")
def docs_site(tmp_path_factory: pytest.TempPathFactory, calculator: Path) -> Path:
    """The isolation page's ``fragile`` (its distribution, fragile-tools) and the calculator."""
    base = tmp_path_factory.mktemp("dora-isolation-docs")
    project = tomllib.loads((FRAGILE_TOOLS / "pyproject.toml").read_text(encoding="utf-8"))
    fragile = build_wheel(
        base / "wheels",
        name=project["project"]["name"],
        version=project["project"]["version"],
        files={"fragile.py": (FRAGILE_TOOLS / "fragile.py").read_text(encoding="utf-8")},
        plugins=project["project"]["entry-points"]["mofa.plugins"],
    )
    return _install(base / "site", fragile, calculator)


class Run:
    """One ``dora run`` of the isolation dataflow, read line by line as it goes."""

    def __init__(self, folder: Path, site: Path) -> None:
        self.folder = folder
        #: Every process this run starts carries it: what is left of the run can be found.
        self.marker = f"MKT_DORA_ISOLATION={folder}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MOFA_", "DORA_"))}
        env["PYTHONPATH"] = str(site)
        env["PATH"] = os.pathsep.join([str(BIN), env.get("PATH", "")])
        env["MOFA_CACHE_DIR"] = str(folder / "cache")
        name, value = self.marker.split("=", 1)
        env[name] = value
        self.process = subprocess.Popen(
            [str(_dora()), "run", "isolated.yml"],
            cwd=folder,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.seen: list[str] = []
        # A failure guard only: a run that hangs is ended, and the test fails on what it saw.
        self.guard = threading.Timer(PATIENCE, self.process.kill)
        self.guard.start()

    def until(self, pattern: str, unless: str | None = None) -> re.Match[str]:
        """The first line of the output that matches ``pattern`` (and whose first group is not
        ``unless``), reading on until there is one.

        The lines seen before count too: dora interleaves the nodes' outputs,
        so one node's line may come out before what another printed earlier.
        """
        stream: IO[str] | None = self.process.stdout
        assert stream is not None
        for number in itertools.count():
            if number < len(self.seen):
                line = self.seen[number]
            else:
                line = stream.readline()
                if not line:
                    pytest.fail(f"never saw {pattern!r}:\n" + self.tail())
                self.seen.append(line)
            found = re.search(pattern, line)
            if found and (unless is None or found[1] != unless):
                return found
        raise AssertionError("unreachable")

    def finish(self) -> int:
        assert self.process.stdout is not None
        self.seen.append(self.process.stdout.read())
        return self.process.wait(timeout=PATIENCE)

    def tail(self) -> str:
        """The end of the output, without Rust backtraces."""
        keep = [line for line in "".join(self.seen).splitlines() if not line.lstrip()[:1].isdigit()]
        return "\n".join(keep[-40:])

    def left_behind(self) -> dict[int, str]:
        """The processes this run started that are still there (zombies have ended), with
        their command lines."""
        found = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                environ = (entry / "environ").read_bytes().split(b"\0")
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:  # gone meanwhile, or not ours to read
                continue
            if self.marker.encode() in environ and stat.rsplit(")", 1)[1].split()[0] != "Z":
                found[int(entry.name)] = cmdline
        return found


def _write_fifo(path: Path) -> None:
    """Write to a fifo, waiting (a bounded while, as a failure guard) until its reader opens it."""
    writer = threading.Thread(target=path.write_text, args=("go",), daemon=True)
    writer.start()
    writer.join(timeout=PATIENCE)
    assert not writer.is_alive(), f"nobody opened {path.name}"


@contextlib.contextmanager
def dataflow(folder: Path, site: Path) -> Iterator[Run]:
    """``dora run isolated.yml`` in ``folder``, with the plugins of ``site``; whatever happens,
    nothing of it is left running afterwards."""
    run = Run(folder, site)
    try:
        yield run
    finally:
        run.guard.cancel()
        if run.process.poll() is None:
            run.process.kill()
            run.process.wait()
        assert run.process.stdout is not None
        run.process.stdout.close()
        for pid in run.left_behind():  # after a failure: nothing of it outlives the test
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _copy_example(folder: Path) -> str:
    """Copy the example's files into ``folder``; the dataflow's text."""
    for name in ("isolated.yml", "isolated.toml", "asker.py"):
        shutil.copy(DATAFLOW / name, folder / name)
    return (folder / "isolated.yml").read_text(encoding="utf-8")


def test_the_example_of_the_docs_runs_as_shown(docs_site: Path, tmp_path: Path) -> None:
    _copy_example(tmp_path)
    with dataflow(tmp_path, docs_site) as run:
        code = run.finish()
    assert code == 0, run.tail()
    same_as(tmp_path / "isolated-transcript.txt", DATAFLOW / "isolated.out")
    assert run.left_behind() == {}


@pytest.mark.parametrize("how", ["SIGTERM", "ctrl-c"])
def test_an_isolated_plugin_crashes_restarts_and_leaves_nothing_behind(
    site: Path, tmp_path: Path, how: str
) -> None:
    # The example's dataflow, with a sender the test paces, and the node under kernel.py,
    # which notes its pid first.
    yml = _copy_example(tmp_path)
    replaced = {
        "    path: mofa-kernel\n": "    path: kernel.py\n",
        "path: asker.py": "path: prober.py",
    }
    for old, new in replaced.items():
        assert old in yml
        yml = yml.replace(old, new)
    (tmp_path / "isolated.yml").write_text(yml, encoding="utf-8")
    (tmp_path / "prober.py").write_text(PROBER, encoding="utf-8")
    (tmp_path / "kernel.py").write_text(KERNEL, encoding="utf-8")
    os.mkfifo(tmp_path / "go")
    with dataflow(tmp_path, site) as run:
        first = int(run.until(r"prober heard reply 1 (\d+)")[1])
        child = int(run.until(r"prober heard reply 2 (\d+)")[1])
        # The worker dies mid-call: that input is answered on error, naming how it ended.
        failure = run.until(r"prober heard failure 3 (.*)")[1]
        assert json.loads(failure) == {  # as docs/dora.md shows it
            "plugin_id": "fragile",
            "input_id": "fragile",
            "error": "plugin 'fragile': worker exited with code 3",
        }
        # The node serves its other plugin meanwhile.
        run.until(r"prober heard reply 4 42")
        # The policy restarts it in a new worker; the old one's process group is gone.
        again = int(run.until(r"fragile running in worker (\d+)", unless=str(first))[1])
        assert not running(first)
        assert not running(child)
        _write_fifo(tmp_path / "go")
        assert int(run.until(r"prober heard reply 5 (\d+)")[1]) == again
        second_child = int(run.until(r"prober heard reply 6 (\d+)")[1])
        assert running(again)
        assert running(second_child)
        run.until("prober done")
        if how == "SIGTERM":
            os.kill(int((tmp_path / "kernel.pid").read_text()), signal.SIGTERM)
        else:  # ctrl-c on dora run: dora stops the dataflow, and the node gets STOP
            run.process.send_signal(signal.SIGINT)
        code = run.finish()
        assert code == 0, run.tail()
        assert "kernel finished successfully" in "".join(run.seen), run.tail()
        # The node ended its worker's process group, and its spare worker, before it exited.
        assert not running(again)
        assert not running(second_child)
        assert run.left_behind() == {}
