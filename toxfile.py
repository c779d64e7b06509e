"""tox's inline plugin for this project: find every Python from 3.10 to 3.13 on the machine.

tox looks for ``python3.X`` on PATH. Interpreters that pyenv installed are
not there (pyenv's shims answer only for the versions selected with ``pyenv
global`` or ``pyenv local``), so a plain ``python -m tox`` would skip them and
still end with "congratulations". This plugin puts each pyenv version's own
``bin`` folder on PATH before tox looks, and when tox ends it says which of
the supported versions it found and which it could not find (their
environments were skipped). tox loads this file by itself: the README's
``python -m tox`` needs nothing more.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from tox.plugin import impl

#: The Python versions the project supports, as tox's ``py3XX`` environments name them.
SUPPORTED = ("3.10", "3.11", "3.12", "3.13")
_VERSION_DIR = re.compile(r"3\.(\d+)\.\d+")


def pyenv_bin_folders() -> list[Path]:
    """The ``bin`` folder of every CPython 3.10-3.13 that pyenv installed, newest patch first."""
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    versions = root / "versions"
    if not versions.is_dir():
        return []
    found: dict[str, tuple[tuple[int, ...], Path]] = {}
    for folder in versions.iterdir():
        match = _VERSION_DIR.fullmatch(folder.name)
        if match is None or f"3.{match.group(1)}" not in SUPPORTED:
            continue
        key = tuple(int(part) for part in folder.name.split("."))
        minor = f"3.{match.group(1)}"
        if (folder / "bin").is_dir() and (minor not in found or key > found[minor][0]):
            found[minor] = (key, folder / "bin")
    return [path for _, path in sorted(found.values(), reverse=True)]


def _runs(executable: str) -> bool:
    """Whether ``executable`` starts (a pyenv shim for an unselected version does not)."""
    try:
        result = subprocess.run(
            [executable, "-c", "pass"], capture_output=True, timeout=30, check=False
        )
    except OSError:
        return False
    return result.returncode == 0


def available() -> dict[str, bool]:
    """For each supported version: is a working ``python3.X`` on PATH (or running tox)?"""
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    found = {}
    for version in SUPPORTED:
        candidates = [
            os.path.join(folder, f"python{version}")
            for folder in os.environ.get("PATH", "").split(os.pathsep)
            if folder and shutil.which(f"python{version}", path=folder)
        ]
        found[version] = version == running or any(_runs(c) for c in candidates)
    return found


def _summary(found: dict[str, bool]) -> None:
    tested = [version for version, ok in found.items() if ok]
    missing = [version for version, ok in found.items() if not ok]
    print(f"Python versions found for the test environments: {', '.join(tested) or 'none'}")
    if missing:
        envs = ", ".join(f"py{version.replace('.', '')}" for version in missing)
        print(
            f"NOT FOUND on this machine, so NOT tested: Python {', '.join(missing)} "
            f"({envs} skipped). Install them (pyenv install 3.X) to test every supported version."
        )


def _runs_test_envs(state: Any) -> bool:
    """Whether this tox run includes the ``py3XX`` environments (the default list does)."""
    selected = getattr(getattr(state, "conf", None), "options", None)
    envs = getattr(selected, "env", None)
    if envs is None or getattr(envs, "is_default_list", True) or getattr(envs, "is_all", False):
        return True
    return any(str(name).startswith("py3") for name in envs)


@impl
def tox_add_core_config(core_conf: Any, state: Any) -> None:
    """Put pyenv's interpreters on PATH (after what is there) and report at exit."""
    del core_conf
    folders = [str(folder) for folder in pyenv_bin_folders()]
    path = os.environ.get("PATH", "")
    # Before pyenv's shims (which refuse unselected versions), after everything else.
    entries = path.split(os.pathsep) if path else []
    shims = next((i for i, entry in enumerate(entries) if entry.endswith("shims")), len(entries))
    entries[shims:shims] = [folder for folder in folders if folder not in entries]
    os.environ["PATH"] = os.pathsep.join(entries)
    if _runs_test_envs(state):
        atexit.register(_summary, available())
