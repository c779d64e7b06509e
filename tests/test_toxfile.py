"""toxfile.py finds pyenv's interpreters for tox and says which Python versions are missing.

The README's test command is plain ``python -m tox``; CI (``.ci/run``) runs
that command word for word, so whatever finds the interpreters must live in
tox's own configuration, not in CI.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
import types
from pathlib import Path

import pluggy
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def toxfile(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """The module, imported as tox imports it (with tox's hook marker stood in if tox is absent)."""
    if importlib.util.find_spec("tox") is None:
        stub = types.ModuleType("tox.plugin")
        stub.impl = pluggy.HookimplMarker("tox")  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "tox", types.ModuleType("tox"))
        monkeypatch.setitem(sys.modules, "tox.plugin", stub)
    spec = importlib.util.spec_from_file_location("mofa_toxfile", ROOT / "toxfile.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fake_pyenv(root: Path, *versions: str) -> None:
    """A pyenv root whose versions/X.Y.Z/bin/pythonX.Y run this interpreter."""
    for version in versions:
        folder = root / "versions" / version / "bin"
        folder.mkdir(parents=True)
        minor = ".".join(version.split(".")[:2])
        (folder / f"python{minor}").symlink_to(sys.executable)


def test_pyenv_folders_newest_patch_of_each_supported_version(
    toxfile: types.ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_pyenv(tmp_path, "3.10.2", "3.10.13", "3.12.1", "3.9.18", "2.7.18")
    (tmp_path / "versions" / "miniconda3-latest").mkdir()
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path))
    folders = toxfile.pyenv_bin_folders()
    assert folders == [
        tmp_path / "versions" / "3.12.1" / "bin",
        tmp_path / "versions" / "3.10.13" / "bin",
    ]


def test_core_config_puts_them_on_path_before_the_shims(
    toxfile: types.ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_pyenv(tmp_path, "3.13.0")
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path))
    monkeypatch.setenv("PATH", os.pathsep.join(["/opt/first", "/home/me/.pyenv/shims", "/bin"]))
    registered: list[object] = []
    monkeypatch.setattr(toxfile.atexit, "register", lambda *args: registered.append(args))
    toxfile.tox_add_core_config(None, None)
    assert os.environ["PATH"].split(os.pathsep) == [
        "/opt/first",
        str(tmp_path / "versions" / "3.13.0" / "bin"),
        "/home/me/.pyenv/shims",
        "/bin",
    ]
    ((summary, found),) = registered
    assert summary == toxfile._summary
    assert found["3.13"] is True


def test_the_summary_names_the_versions_not_found(
    toxfile: types.ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    toxfile._summary({"3.10": False, "3.11": True, "3.12": True, "3.13": False})
    out = capsys.readouterr().out
    assert "found for the test environments: 3.11, 3.12" in out
    assert "NOT FOUND on this machine, so NOT tested: Python 3.10, 3.13" in out
    assert "(py310, py313 skipped)" in out


def test_a_version_whose_command_does_not_run_is_not_found(
    toxfile: types.ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Like a pyenv shim for a version that is installed but not selected.
    shim = tmp_path / "python3.10"
    shim.write_text("#!/bin/sh\necho 'pyenv: python3.10: command not found' >&2\nexit 127\n")
    shim.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    found = toxfile.available()
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert found["3.10"] is (running == "3.10")
    assert found[running] is True


def test_ci_runs_the_readme_test_command_word_for_word() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Run the tests", 1)[1].split("\n## ", 1)[0]
    (command,) = re.findall(r"```sh\n(.*?)\n```", section, re.DOTALL)
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert ci[-1] == command
    assert command.endswith("python -m tox")
