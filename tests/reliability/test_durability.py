"""Durability through the kernel: SIGKILL the memory sample mid-writes, restart, find every
acknowledged write.

The sample's own test (sample_plugins/memory/tests/test_durability.py) registers
the plugin in-process and reads the database file back with sqlite3. This one
goes the way a deployment does: the host discovers ``memory`` through its entry
point and a configuration file, writes through ``execute`` until it is killed,
and a second host started the same way reads every acknowledged write back
through ``execute``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from _fakesite import FakeSite

from ._report import Collector, run_mode

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
MEMORY_SOURCE = ROOT / "sample_plugins" / "memory" / "src"
ACKS_BEFORE_KILL = 400 if run_mode() == "full" else 40

HOST = """\
import asyncio
import json
import sys

from mofa_kernel import PluginManager


async def start(manager):
    report = manager.discover()
    assert report.registered == ["memory"], report.errors
    started = await manager.start_all()
    assert started.ok, started.errors()


async def write(config):
    async with PluginManager.from_config(config) as manager:
        await start(manager)
        i = 0
        while True:
            for request in (
                {"op": "set", "key": f"k{i}", "value": i},
                {"op": "append", "conversation": "log", "role": "user", "content": str(i)},
            ):
                assert json.loads(await manager.execute("memory", json.dumps(request)))["ok"]
            print(i, flush=True)  # acknowledged: both writes have returned
            i += 1


async def read(config, count):
    async with PluginManager.from_config(config) as manager:
        await start(manager)
        found = {}
        for i in range(count):
            request = {"op": "get", "key": f"k{i}"}
            reply = json.loads(await manager.execute("memory", json.dumps(request)))
            found[i] = reply["value"] if reply["found"] else None
        request = {"op": "history", "conversation": "log"}
        history = json.loads(await manager.execute("memory", json.dumps(request)))["messages"]
        print(json.dumps({"values": found, "log": [m["content"] for m in history]}))


if sys.argv[1] == "write":
    asyncio.run(write(sys.argv[2]))
else:
    asyncio.run(read(sys.argv[2], int(sys.argv[3])))
"""


def _environment(site: Path) -> dict[str, str]:
    """The host's environment: the fake installation first, the sample's code, this
    interpreter's own path, and discovery limited to ``memory``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOFA_", "PYTHON"))}
    path = [str(site), str(MEMORY_SOURCE), *filter(None, sys.path)]
    env["PYTHONPATH"] = os.pathsep.join(path)
    env["MOFA_PLUGINS"] = "memory"
    return env


def _install_memory(site: FakeSite) -> None:
    # Named like the real distribution and first on the path, so that discovery finds this
    # one whether or not the sample is installed in the environment running the tests.
    site.add("mofa-sample-memory", "0.1.0", plugins={"memory": "mofa_sample_memory:MemoryPlugin"})


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_acknowledged_writes_survive_sigkill(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tally: Collector
) -> None:
    site = FakeSite(tmp_path / "site", monkeypatch)
    _install_memory(site)
    database = tmp_path / "memory.sqlite3"
    config = tmp_path / "mofa.toml"
    config.write_text(
        textwrap.dedent(
            f"""\
            [kernel]
            timeout = 10.0

            [plugins.memory.settings]
            path = {json.dumps(str(database))}
            """
        ),
        encoding="utf-8",
    )
    host = tmp_path / "host.py"
    host.write_text(HOST, encoding="utf-8")
    env = _environment(site.root)

    writer = subprocess.Popen(
        [sys.executable, str(host), "write", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert writer.stdout is not None
    assert writer.stderr is not None
    acknowledged: list[int] = []
    try:
        for line in writer.stdout:
            acknowledged.append(int(line))
            if len(acknowledged) == ACKS_BEFORE_KILL:
                break
    finally:
        os.kill(writer.pid, signal.SIGKILL)  # mid-writes: the loop never pauses
        # Read on through the same buffered stream: lines it has read ahead are acknowledged
        # too (communicate() would read the pipe beneath it and miss them, the more so the
        # busier the machine). The writer is dead, so both pipes end.
        with writer.stdout, writer.stderr:
            rest, errors = writer.stdout.read(), writer.stderr.read()
        writer.wait(timeout=60)
    assert len(acknowledged) == ACKS_BEFORE_KILL, errors
    assert writer.returncode == -signal.SIGKILL
    # Lines already in the pipe were acknowledged too; a line cut short by the kill was not.
    acknowledged += [int(line) for line in rest.splitlines(keepends=True) if line.endswith("\n")]
    assert acknowledged == list(range(len(acknowledged)))

    reader = subprocess.run(
        [sys.executable, str(host), "read", str(config), str(len(acknowledged))],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert reader.returncode == 0, reader.stderr
    found = json.loads(reader.stdout)
    values = {int(i): v for i, v in found["values"].items()}
    assert values == {i: i for i in acknowledged}
    log = found["log"]
    assert log[: len(acknowledged)] == [str(i) for i in acknowledged]
    # At most the one write in flight at the kill went through unacknowledged.
    assert len(log) - len(acknowledged) <= 1

    tally.durability.update(acknowledged=len(acknowledged), present=len(acknowledged))
