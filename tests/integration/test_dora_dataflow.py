"""Kernel nodes in real dora-rs dataflows: ``dora run``, and a coordinator with two daemons.

The sample plugins are installed for these runs as distributions (dist-info
folders with their entry points, their sources on ``PYTHONPATH``); the
``mofa-kernel`` and ``dora`` commands are this environment's. Each dataflow
runs in a copy of its folder under the test's temporary directory.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Final

import pytest

pytest.importorskip("dora.testing", reason="dora-rs 1.x (Python 3.11 and newer) is not installed")

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "sample_plugins"
#: The sample dataflows the docs show (docs/dora.md).
DATAFLOW = ROOT / "docs" / "dataflow"
LOADGEN = Path(__file__).resolve().parent / "dora" / "loadgen.py"
BIN = Path(sys.executable).parent
QUICK = os.environ.get("MOFA_TEST_QUICK") == "1"
#: The sample plugins these dataflows use: plugin id -> (distribution, entry point).
INSTALLED = {
    "calculator": ("mofa-sample-calculator", "mofa_sample_calculator:CalculatorPlugin"),
    "memory": ("mofa-sample-memory", "mofa_sample_memory:MemoryPlugin"),
}


def _dora() -> Path:
    found = BIN / "dora"
    if found.exists():
        return found
    which = shutil.which("dora")
    if which is None:
        pytest.skip("the dora command (dora-rs-cli) is not installed")
    return Path(which)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of dist-info for the sample plugins, whose sources stay where they are."""
    root = tmp_path_factory.mktemp("dora-site")
    for folder, (distribution, entry_point) in INSTALLED.items():
        plugin_id = folder
        info = root / f"{distribution.replace('-', '_')}-0.1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 0.1.0\n"
            "Requires-Dist: mofa-kernel\n",
            encoding="utf-8",
        )
        (info / "entry_points.txt").write_text(
            f"[mofa.plugins]\n{plugin_id} = {entry_point}\n", encoding="utf-8"
        )
        (info / "RECORD").write_text("", encoding="utf-8")
    return root


def environment(site: Path, **extra: str) -> dict[str, str]:
    paths = [str(site), *(str(SAMPLES / folder / "src") for folder in INSTALLED)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOFA_", "DORA_"))}
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PATH"] = os.pathsep.join([str(BIN), env.get("PATH", "")])
    env["MOFA_CACHE_DIR"] = str(site.parent / "cache")
    env.update(extra)
    return env


def dora_run(
    folder: Path, dataflow: str, env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(_dora()), "run", dataflow],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, _tail(result.stdout + result.stderr)
    return result


def same_as(actual: Path, expected: Path) -> None:
    """``actual`` reads as ``expected`` (``MOFA_UPDATE_DOC_EXAMPLES=1`` rewrites ``expected``)."""
    text = actual.read_text(encoding="utf-8")
    if os.environ.get("MOFA_UPDATE_DOC_EXAMPLES") == "1":
        expected.write_text(text, encoding="utf-8")
    assert text == expected.read_text(encoding="utf-8")


def _tail(text: str) -> str:
    """The end of dora's output, without the Rust backtraces."""
    keep = [line for line in text.splitlines() if not line.lstrip()[:1].isdigit()]
    return "\n".join(keep[-40:])


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    folder = tmp_path / "dataflow"
    shutil.copytree(DATAFLOW, folder, ignore=shutil.ignore_patterns("out", "_work", "*.txt"))
    return folder


# -- the sample dataflows ----------------------------------------------------------------------


#: The memory sample keeps its database in the user's data folder; a relative one puts it
#: below each node's own working folder, where the tests can tell which machine ran it.
NODE_DATA: Final = {"XDG_DATA_HOME": "."}
MEMORY_FILE: Final = "mofa-kernel/memory.sqlite3"


def test_the_sample_pipeline_runs_with_dora_run(site: Path, sample: Path) -> None:
    dora_run(sample, "dataflow.yml", environment(site, **NODE_DATA))
    same_as(sample / "transcript.txt", DATAFLOW / "tutor.out")
    assert (sample / MEMORY_FILE).exists()  # the memory node kept the answers


def test_a_mofa_agent_and_a_rust_peer_are_answered_in_their_own_shapes(
    site: Path, sample: Path
) -> None:
    dora_run(sample, "agent.yml", environment(site))
    same_as(sample / "agent-transcript.txt", DATAFLOW / "agent.out")


def test_a_host_program_serves_through_the_library_as_the_command_does(
    site: Path, sample: Path
) -> None:
    yaml = (sample / "agent.yml").read_text(encoding="utf-8")
    command = "    path: mofa-kernel\n    args: dora-node --plugin calculator\n"
    assert command in yaml
    (sample / "host.yml").write_text(yaml.replace(command, "    path: host.py\n"), "utf-8")
    run = dora_run(sample, "host.yml", environment(site))
    same_as(sample / "agent-transcript.txt", DATAFLOW / "agent.out")
    assert "answered 2, failed 1, ignored 1" in run.stdout + run.stderr


# -- load: nothing lost, nothing twice ---------------------------------------------------------

LOAD = """\
nodes:
  - id: load
    path: {loadgen}
    inputs:
      reply:
        source: kernel/out
        queue_policy: backpressure
      failure:
        source: kernel/error
        queue_policy: backpressure
    outputs: [request]
  - id: kernel
    path: mofa-kernel
    args: dora-node --plugin calculator --concurrency {concurrency}
    inputs:
      request:
        source: load/request
        queue_policy: backpressure
    outputs: [out, error]
"""


def load_result(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


@pytest.mark.parametrize("concurrency", [1, 16])
def test_many_requests_16_in_flight_are_each_answered_once(
    site: Path, tmp_path: Path, concurrency: int
) -> None:
    count = 300 if QUICK else 2000
    (tmp_path / "load.yml").write_text(
        LOAD.format(loadgen=LOADGEN, concurrency=concurrency), encoding="utf-8"
    )
    result_file = tmp_path / "result.json"
    env = environment(
        site,
        LOAD_COUNT=str(count),
        LOAD_IN_FLIGHT="16",
        LOAD_RESULT=str(result_file),
    )
    dora_run(tmp_path, "load.yml", env)
    result = load_result(result_file)
    assert result["problem"] is None
    assert (result["sent"], result["answered"]) == (count, count)
    assert (result["duplicates"], result["wrong"], result["errors"]) == (0, 0, 0)


# -- two daemons on one machine ----------------------------------------------------------------


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class Cluster:
    """A dora coordinator and two daemons, machines A and B, all on 127.0.0.1."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder = folder
        coordinator, zenoh, listen_a, listen_b = _free_ports(4)
        self.env = {**env, "DORA_COORDINATOR_PORT": str(coordinator)}
        self.logs = folder / "logs"
        self.logs.mkdir()
        self.processes: list[subprocess.Popen[bytes]] = []
        self.spawn("coordinator", "coordinator", "--store", "memory", "--port", str(coordinator))
        for machine, listen in (("A", listen_a), ("B", listen_b)):
            machine_dir = folder / machine
            machine_dir.mkdir()
            self.spawn(
                f"daemon-{machine}",
                "daemon",
                "--machine-id",
                machine,
                "--local-listen-port",
                str(listen),
                "--zenoh-peer",
                f"tcp/127.0.0.1:{zenoh}",
                cwd=machine_dir,
            )

    def spawn(self, name: str, *argv: str, cwd: Path | None = None) -> None:
        with (self.logs / f"{name}.log").open("wb") as log:
            self.processes.append(
                subprocess.Popen(
                    [str(_dora()), *argv],
                    cwd=cwd or self.folder,
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )

    def wait_for_daemons(self) -> None:
        """Until ``dora cluster status`` lists both machines' daemons.

        Nothing announces it, so this asks every half second, for up to a minute.
        """
        for _ in range(120):
            status = subprocess.run(
                [str(_dora()), "cluster", "status"],
                env=self.env,
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            daemons = {line.split("-", 1)[0] for line in status.stdout.splitlines()}
            if status.returncode == 0 and {"A", "B"} <= daemons:
                return
            time.sleep(0.5)
        pytest.fail("the two dora daemons never connected: " + _tail(status.stdout))

    def close(self) -> None:
        for process in reversed(self.processes):
            process.terminate()
        for process in reversed(self.processes):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def cluster(site: Path, sample: Path) -> Iterator[Cluster]:
    running = Cluster(sample, environment(site, **NODE_DATA))
    try:
        yield running
    finally:
        running.close()


def test_the_sample_pipeline_runs_across_two_daemons(cluster: Cluster, sample: Path) -> None:
    cluster.wait_for_daemons()
    # Machine A's daemon runs its nodes below its own folder; the tutor's file is two up.
    shutil.copy(sample / "tutor.py", sample / "A" / "tutor.py")
    started = subprocess.run(
        [str(_dora()), "start", str(sample / "dataflow-two-machines.yml"), "--attach"],
        cwd=sample,
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert started.returncode == 0, _tail(started.stdout + started.stderr)
    (transcript,) = (sample / "A" / "_work").glob("*/transcript.txt")
    same_as(transcript, DATAFLOW / "tutor.out")
    # The memory node ran on machine B: its database is in B's folder, not A's.
    assert list((sample / "B" / "_work").glob(f"*/{MEMORY_FILE}"))
    assert not list((sample / "A" / "_work").glob(f"*/{MEMORY_FILE}"))


SIGTERM_DATAFLOW = """\
nodes:
  - id: asker
    path: asker.py
    inputs:
      reply: kernel/out
    outputs: [request]
  - id: kernel
    path: kernel.py
    inputs:
      request: asker/request
    outputs: [out, error]
"""

ASKER = """\
import pyarrow as pa
from dora import Node

node = Node()
node.send_output("request", pa.array(["6 * 7"]), {"request_id": 1})
event = node.next()
print("asker heard", event["value"][0].as_py(), flush=True)
for event in node:  # until the kernel node has gone and the inputs close
    pass
"""

# The kernel node under its own pid, written down first so that the test can signal it.
KERNEL = """\
import os
import pathlib

pathlib.Path("kernel.pid").write_text(str(os.getpid()))
os.execvp("mofa-kernel", ["mofa-kernel", "dora-node", "--plugin", "calculator"])
"""


def test_sigterm_makes_a_kernel_node_shut_down_and_exit_0(site: Path, tmp_path: Path) -> None:
    import signal

    (tmp_path / "sigterm.yml").write_text(SIGTERM_DATAFLOW, encoding="utf-8")
    (tmp_path / "asker.py").write_text(ASKER, encoding="utf-8")
    (tmp_path / "kernel.py").write_text(KERNEL, encoding="utf-8")
    with subprocess.Popen(
        [str(_dora()), "run", "sigterm.yml"],
        cwd=tmp_path,
        env=environment(site),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as run:
        assert run.stdout is not None
        seen: list[str] = []
        for line in run.stdout:  # the node has answered once it is heard
            seen.append(line)
            if "asker heard 42" in line:
                break
        else:
            pytest.fail("the kernel node never answered:\n" + _tail("".join(seen)))
        os.kill(int((tmp_path / "kernel.pid").read_text()), signal.SIGTERM)
        rest = run.stdout.read()
        code = run.wait(timeout=120)
    assert code == 0, _tail("".join(seen) + rest)
    assert "kernel finished successfully" in rest


# -- SIGTERM with a call in flight ---------------------------------------------------------------

HOLD_DATAFLOW = """\
nodes:
  - id: asker
    path: asker.py
    inputs:
      reply: kernel/out
      failure: kernel/error
    outputs: [request]
  - id: kernel
    path: kernel.py
    inputs:
      request: asker/request
    outputs: [out, error]
"""

# Asks "hold", then (when the test says so, through the fifo "go") asks "late"; prints each reply.
HOLD_ASKER = """\
import pyarrow as pa
from dora import Node

node = Node()
node.send_output("request", pa.array(["hold"]), {"request_id": 1})
with open("go") as go:  # a fifo: blocks until the test writes to it
    go.read()
node.send_output("request", pa.array(["late"]), {"request_id": 2})
for event in node:
    if event["type"] == "INPUT":
        number = event["metadata"]["request_id"]
        print("asker heard", event["id"], number, event["value"][0].as_py(), flush=True)
"""

# Holds "hold" until the test writes to the fifo "release"; says what it executes.
HOLD_PLUGIN = """\
import asyncio
from pathlib import Path

from mofa_kernel import AgentPlugin, PluginMetadata, PluginType


class Hold(AgentPlugin):
    metadata = PluginMetadata("hold", "Hold", PluginType.TOOL)

    async def execute(self, input):
        print("executing", input, flush=True)
        if input == "hold":
            await asyncio.to_thread(Path("release").read_text)
        return "done:" + input
"""


def _write_fifo(path: Path) -> None:
    """Write to a fifo, waiting (for two minutes at most) until its reader opens it."""
    writer = threading.Thread(target=path.write_text, args=("go",), daemon=True)
    writer.start()
    writer.join(timeout=120)
    assert not writer.is_alive(), f"nobody opened {path.name}"


def _read_until(stream: IO[str], seen: list[str], marker: str) -> None:
    for line in stream:
        seen.append(line)
        if marker in line:
            return
    pytest.fail(f"never saw {marker!r}:\n" + _tail("".join(seen)))


def test_sigterm_finishes_the_call_in_flight_and_answers_a_late_input_on_error(
    site: Path, tmp_path: Path
) -> None:
    import signal

    plugin_site = tmp_path / "plugin-site"
    info = plugin_site / "mkt_hold-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mkt-hold\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[mofa.plugins]\nhold = mkt_hold:Hold\n")
    (info / "RECORD").write_text("")
    (plugin_site / "mkt_hold.py").write_text(HOLD_PLUGIN, encoding="utf-8")
    (tmp_path / "hold.yml").write_text(HOLD_DATAFLOW, encoding="utf-8")
    (tmp_path / "asker.py").write_text(HOLD_ASKER, encoding="utf-8")
    (tmp_path / "kernel.py").write_text(KERNEL.replace("calculator", "hold"), encoding="utf-8")
    os.mkfifo(tmp_path / "go")
    os.mkfifo(tmp_path / "release")
    env = environment(site)
    env["PYTHONPATH"] = os.pathsep.join([str(plugin_site), env["PYTHONPATH"]])
    with subprocess.Popen(
        [str(_dora()), "run", "hold.yml"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as run:
        assert run.stdout is not None
        seen: list[str] = []
        try:
            _read_until(run.stdout, seen, "executing hold")
            os.kill(int((tmp_path / "kernel.pid").read_text()), signal.SIGTERM)
            _read_until(run.stdout, seen, "dora-node stopping on SIGTERM")
            _write_fifo(tmp_path / "go")  # the asker sends "late" now
            _read_until(run.stdout, seen, "asker heard failure 2")
            _write_fifo(tmp_path / "release")  # the call in flight finishes
            rest = run.stdout.read()
            code = run.wait(timeout=120)
        finally:
            if run.poll() is None:
                run.kill()
    output = "".join(seen) + rest
    assert code == 0, _tail(output)
    assert "the node is stopping: this input was not executed" in seen[-1]
    assert "asker heard reply 1 done:hold" in rest
    assert "executing late" not in output
    assert "kernel finished successfully" in rest


HOT_DATAFLOW = """\
nodes:
  - id: asker
    path: asker.py
    inputs:
      reply: kernel/out
    outputs: [request]
  - id: kernel
    path: mofa-kernel
    args: dora-node --plugin shout --hot-reload
    inputs:
      request: asker/request
    outputs: [out, error]
"""

# Asks once, then (after the test has edited the plugin) asks again until the new code answers.
HOT_ASKER = """\
import time

import pyarrow as pa
from dora import Node

node = Node()


def ask(text):
    node.send_output("request", pa.array([text]), {})
    return node.next()["value"][0].as_py()


print("asker heard", ask("a"), flush=True)
for _ in range(600):  # a minute at most: the reload has no event this node could wait for
    if open("edited").read() == "yes" and ask("b").startswith("v2:"):
        print("asker heard the new code", flush=True)
        break
    time.sleep(0.1)
"""

SHOUT = """\
from mofa_kernel import AgentPlugin, PluginMetadata, PluginType


class Shout(AgentPlugin):
    metadata = PluginMetadata("shout", "Shout", PluginType.TOOL)

    async def execute(self, input):
        return "v{version}:" + input.upper()
"""


def test_hot_reload_inside_a_node_serves_the_new_code(site: Path, tmp_path: Path) -> None:
    plugin_site = tmp_path / "plugin-site"
    info = plugin_site / "mkt_shout-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mkt-shout\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[mofa.plugins]\nshout = mkt_shout:Shout\n")
    (info / "RECORD").write_text("")
    module = plugin_site / "mkt_shout.py"
    module.write_text(SHOUT.format(version=1), encoding="utf-8")
    (tmp_path / "hot.yml").write_text(HOT_DATAFLOW, encoding="utf-8")
    (tmp_path / "asker.py").write_text(HOT_ASKER, encoding="utf-8")
    (tmp_path / "edited").write_text("no", encoding="utf-8")
    (tmp_path / "mofa.toml").write_text('[hot_reload]\nstrategy = "immediate"\n', "utf-8")
    env = environment(site)
    env["PYTHONPATH"] = os.pathsep.join([str(plugin_site), env["PYTHONPATH"]])
    with subprocess.Popen(
        [str(_dora()), "run", "hot.yml"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as run:
        assert run.stdout is not None
        seen: list[str] = []
        for line in run.stdout:
            seen.append(line)
            if "asker heard v1:A" in line:
                break
        else:
            pytest.fail("the kernel node never answered:\n" + _tail("".join(seen)))
        module.write_text(SHOUT.format(version=2), encoding="utf-8")
        (tmp_path / "edited").write_text("yes", encoding="utf-8")
        rest = run.stdout.read()
        code = run.wait(timeout=120)
    assert code == 0, _tail("".join(seen) + rest)
    assert "asker heard the new code" in rest, _tail(rest)
