"""Running a documentation example program and comparing what it prints with its ``.out`` file."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path


def check_example_output(program: Path, cwd: Path, extra_env: Mapping[str, str] = {}) -> None:
    """Run ``program`` and compare its stdout with ``program.with_suffix(".out")``.

    ``MOFA_*`` variables of the test run are not passed on; ``extra_env`` is.
    ``MOFA_UPDATE_DOC_EXAMPLES=1`` rewrites the ``.out`` file instead.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOFA_")}
    env.update(extra_env or {})
    result = subprocess.run(
        [sys.executable, str(program)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    expected = program.with_suffix(".out")
    if os.environ.get("MOFA_UPDATE_DOC_EXAMPLES") == "1":
        expected.write_text(result.stdout, encoding="utf-8")
    assert expected.exists(), f"write {expected.name} with MOFA_UPDATE_DOC_EXAMPLES=1"
    assert result.stdout == expected.read_text(encoding="utf-8")
