"""What ``mofa-kernel new-plugin`` writes installs with pip and passes its own tests.

The scaffold is written by the ``mofa-kernel`` script of the session's
virtualenv (conftest.py), so the templates come from the installed wheel, not
the source tree. pip then installs it there with its ``test`` extra, its own
tests run with that virtualenv's pytest, and the kernel's command line finds
the plugin. The distribution is uninstalled again afterwards, so the other
integration tests see the installation they expect.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from _kernel_venv import KernelVenv

pytestmark = pytest.mark.integration

NAME = "kit-greeter"


@pytest.fixture(scope="module")
def project(kernel_venv: KernelVenv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("scaffold") / NAME
    result = kernel_venv.cli("new-plugin", NAME, "--type", "skill", "--dir", str(folder))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    # The next steps it printed, word for word: cd, pip install, pytest.
    cd, install, test = result.stdout.split("and run its tests:\n", 1)[1].split("\n")[:3]
    assert shlex.split(cd) == ["cd", str(folder)]
    assert shlex.split(test) == [str(kernel_venv.python), "-m", "pytest"]
    try:
        subprocess.run(
            shlex.split(install),
            cwd=folder,
            env=kernel_venv.environ(),
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        )
        yield folder
    finally:
        kernel_venv.pip("uninstall", "--yes", NAME)


def test_its_own_tests_pass_straight_after_pip_install(
    kernel_venv: KernelVenv, project: Path
) -> None:
    result = subprocess.run(
        [str(kernel_venv.python), "-m", "pytest", "-p", "no:cacheprovider", "-q"],
        cwd=project,
        env=kernel_venv.environ({"PYTHONDONTWRITEBYTECODE": "1"}),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "7 passed" in result.stdout
    assert "warning" not in result.stdout.lower()


def test_plugins_list_shows_it(kernel_venv: KernelVenv, project: Path) -> None:
    result = kernel_venv.cli("plugins", "list", "--json")
    assert result.returncode == 0, result.stderr
    (row,) = [row for row in json.loads(result.stdout) if row["id"] == NAME]
    assert row["distribution"] == NAME
    assert row["distribution_version"] == "0.1.0"
    assert row["entry_point"] == "kit_greeter:KitGreeterPlugin"
    assert (row["enabled"], row["status"]) == (True, "discovered")
    assert row["requires_kernel"] == ">=0.1"


def test_the_kernel_runs_it(kernel_venv: KernelVenv, project: Path) -> None:
    result = kernel_venv.cli("run", NAME, "world", env={"MOFA_PLUGINS": NAME})
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Hello, world!\n"


def test_it_builds_a_wheel_with_its_entry_point(
    kernel_venv: KernelVenv, project: Path, tmp_path: Path
) -> None:
    kernel_venv.pip("wheel", "--no-deps", "--wheel-dir", str(tmp_path), str(project))
    (wheel,) = tmp_path.glob("*.whl")
    assert wheel.name == "kit_greeter-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = archive.read("kit_greeter-0.1.0.dist-info/entry_points.txt").decode()
    assert {"kit_greeter/__init__.py", "kit_greeter/py.typed"} <= names
    assert "[mofa.plugins]\nkit-greeter = kit_greeter:KitGreeterPlugin" in entry_points
    assert not [name for name in names if name.startswith("tests/")]
