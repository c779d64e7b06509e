"""The docs' example distribution builds with pip and its plugins serve the quick start's host.

docs/examples/text-plugins/ is the distribution the "Writing plugins" page
shows, and the quick start installs it with pip. Here it is built into a wheel by pip, the wheel is
installed by pip into a fresh folder, and the host program of the quick start
runs against that installation and prints exactly what the docs show.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


def pip(*arguments: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *arguments],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_example_distribution_installs_and_serves_the_host(tmp_path: Path) -> None:
    # A copy: building must not leave anything in the source tree.
    project = tmp_path / "text-plugins"
    shutil.copytree(EXAMPLES / "text-plugins", project)

    # Without network or an installed hatchling, pip would need to fetch the build backend.
    isolation = [] if importlib.util.find_spec("hatchling") is None else ["--no-build-isolation"]
    pip("wheel", "--no-deps", *isolation, "--wheel-dir", str(tmp_path / "dist"), str(project))
    (wheel,) = (tmp_path / "dist").glob("text_tools-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        assert {"word_count.py", "shout.py"} <= set(archive.namelist())

    site = tmp_path / "site"
    pip("install", "--no-deps", "--no-index", "--target", str(site), str(wheel))

    env = {k: v for k, v in os.environ.items() if not k.startswith("MOFA_")}
    env["PYTHONPATH"] = str(site)
    env["MOFA_PLUGINS"] = "word-count,shout"
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "host.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == (EXAMPLES / "host.out").read_text(encoding="utf-8")
