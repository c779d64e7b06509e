"""A plugin distribution whose import blocks: the CLI warns on stderr while it is blocked.

The plugin's module reads a named pipe at import time, so its import lasts
exactly until the test writes to the pipe, which it does only after it has
read the warning from the running command's stderr.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from _kernel_venv import KernelVenv
from _wheels import build_wheel

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(sys.platform == "win32", reason="named pipes as files are POSIX"),
]

SLOW = """\
import os

with open(os.environ["MKT_SLOW_FIFO"]) as gate:
    gate.read()

from mofa_kernel import PluginMetadata, PluginType, hookimpl


@hookimpl
def plugin_metadata():
    return PluginMetadata("slow", "Slow", PluginType.TOOL)


@hookimpl
def execute(input):
    return "slow:" + input
"""


def test_run_warns_while_a_plugin_import_is_blocked(good_venv: KernelVenv, tmp_path: Path) -> None:
    wheel = build_wheel(
        tmp_path,
        name="mkt-slow",
        files={"mkt_slow/__init__.py": SLOW},
        plugins={"slow": "mkt_slow"},
    )
    good_venv.pip("install", "--no-deps", "--no-index", wheel)
    fifo = tmp_path / "gate"
    os.mkfifo(fifo)
    env = good_venv.environ({"MKT_SLOW_FIFO": str(fifo), "MOFA_SLOW_IMPORT_WARNING": "0.5"})
    command = subprocess.Popen(
        [str(good_venv.script), "run", "slow", "x"],
        cwd=good_venv.work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Should the warning never come, readline() below would wait for ever: end the command.
    guard = threading.Timer(120, command.kill)
    guard.start()
    try:
        assert command.stderr is not None
        first = command.stderr.readline()  # blocks until the kernel warns
        assert first == (
            "mofa-kernel: warning: plugin 'slow' from mkt-slow 1.0 (mkt_slow): still importing "
            "after 0.5 s (discovery waits for it)\n"
        )
        assert command.poll() is None  # still blocked in the import
        with open(fifo, "w") as gate:
            gate.write("go")
        out, rest = command.communicate(timeout=120)
    finally:
        guard.cancel()
        if command.poll() is None:
            command.kill()
            command.communicate()
        good_venv.pip("uninstall", "--yes", "mkt-slow")
    assert command.returncode == 0, rest
    assert out == "slow:x\n"
    assert rest.startswith(
        "mofa-kernel: warning: plugin 'slow' from mkt-slow 1.0 (mkt_slow): imported after "
    )
    assert rest.count("\n") == 1
