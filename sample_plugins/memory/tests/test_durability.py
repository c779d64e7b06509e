"""No acknowledged write is lost when the process is killed (SIGKILL) mid-stream."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

# The child writes as fast as it can and prints one line per write once execute
# has answered, i.e. once the write is acknowledged. It never stops on its own.
WRITER = """
import asyncio, json, sys
from mofa_kernel import PluginConfig, PluginManager
from mofa_sample_memory import MemoryPlugin

async def main(path):
    async with PluginManager() as manager:
        manager.register(MemoryPlugin(), config=PluginConfig({"path": path}))
        report = await manager.start_all()
        assert report.ok, report.outcomes
        i = 0
        while True:
            request = {"op": "set", "key": f"k{i}", "value": i}
            assert json.loads(await manager.execute("memory", json.dumps(request)))["ok"]
            request = {"op": "append", "conversation": "log", "role": "user", "content": str(i)}
            assert json.loads(await manager.execute("memory", json.dumps(request)))["ok"]
            print(i, flush=True)
            i += 1

asyncio.run(main(sys.argv[1]))
"""

ACKS_BEFORE_KILL = 60


def test_acknowledged_writes_survive_sigkill(tmp_path: Path) -> None:
    db_path = tmp_path / "memory.sqlite3"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    child = subprocess.Popen(
        [sys.executable, str(script), str(db_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    acknowledged: list[int] = []
    try:
        for line in child.stdout:
            acknowledged.append(int(line))
            if len(acknowledged) == ACKS_BEFORE_KILL:
                break
    finally:
        child.kill()  # SIGKILL on POSIX: no cleanup code of the child runs
        rest, errors = child.communicate(timeout=60)
    assert len(acknowledged) == ACKS_BEFORE_KILL, errors
    # Lines already written to the pipe before the kill are acknowledged too;
    # a line cut off by the kill is not.
    acknowledged += [int(line) for line in rest.splitlines(keepends=True) if line.endswith("\n")]
    assert child.returncode != 0

    db = sqlite3.connect(db_path)
    try:
        stored = dict(db.execute("SELECT key, value FROM kv").fetchall())
        logged = {row[0] for row in db.execute("SELECT content FROM messages")}
    finally:
        db.close()
    for i in acknowledged:
        assert json.loads(stored[f"k{i}"]) == i
        assert str(i) in logged
