"""The quick start's shell commands, run word for word in a copy of the clone.

A newcomer has a clone and a Python, nothing else: no virtualenv, no
mofa-kernel on the package index. Every ``$ command`` of the console blocks of
docs/quickstart.md runs here, in order, in one bash session started in a
fresh copy of the repository's files (so the virtualenv the page makes is new,
and the source tree is left alone). Where the page shows what a command
prints, the command must print exactly that; the host program must print its
``.out`` file, which the page shows below it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "quickstart.md"
BLOCK = re.compile(r"^```console\n(.*?)^```", re.MULTILINE | re.DOTALL)
#: Printed between two commands' output, to tell them apart.
MARK = "@@quickstart-step-done@@"
#: What a copy of the clone leaves out: version control, caches, virtualenvs and builds.
NOT_IN_A_CLONE = shutil.ignore_patterns(
    ".git", ".venv", ".tox", "__pycache__", "_build", "build", "dist", "*.egg-info",
    ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis", "mofa.toml",
)  # fmt: skip


def steps(page: str) -> list[tuple[str, str | None]]:
    """``(command, expected output or None)`` for every ``$`` line of the page's console blocks."""
    found: list[tuple[str, str | None]] = []
    for block in BLOCK.findall(page):
        for chunk in re.split(r"^\$ ", block, flags=re.MULTILINE)[1:]:
            command, _, shown = chunk.partition("\n")
            found.append((command, shown if shown.strip() else None))
    return found


def test_the_page_has_the_steps_a_newcomer_needs() -> None:
    commands = [command for command, _ in steps(PAGE.read_text(encoding="utf-8"))]
    assert commands[0].startswith("python3 -m venv .venv")
    assert any(command.startswith("python -m pip install . ") for command in commands)
    assert "python docs/examples/host.py" in commands


def test_every_command_of_the_quickstart_works_in_a_fresh_clone(tmp_path: Path) -> None:
    clone = tmp_path / "mofa-kernel"
    shutil.copytree(ROOT, clone, ignore=NOT_IN_A_CLONE)
    todo = steps(PAGE.read_text(encoding="utf-8"))
    script = "set -e\n" + "".join(f"{command}\necho {MARK}\n" for command, _ in todo)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOFA_", "PYTHON"))}
    env.pop("VIRTUAL_ENV", None)
    if "MOFA_CACHE_DIR" in os.environ:  # the suite's private cache, never ~/.cache
        env["MOFA_CACHE_DIR"] = os.environ["MOFA_CACHE_DIR"]
    # "python3" is a Python the suite runs on, as it would be on the newcomer's machine.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    outputs = result.stdout.split(f"{MARK}\n")
    assert result.returncode == 0, (
        f"step {len(outputs)} failed: {todo[min(len(outputs), len(todo)) - 1][0]}\n"
        f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    assert len(outputs) == len(todo) + 1
    host_out = (ROOT / "docs" / "examples" / "host.out").read_text(encoding="utf-8")
    for (command, shown), printed in zip(todo, outputs, strict=False):
        if command == "python docs/examples/host.py":
            assert printed == host_out
        elif shown is not None:
            assert printed == shown, command
