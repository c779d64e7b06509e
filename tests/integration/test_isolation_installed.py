"""Process isolation with pip-installed distributions, through the installed command line."""

from __future__ import annotations

import json
import sys

import pytest
from _kernel_venv import KernelVenv

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="workers need pidfds")

CONFIG = '[kernel]\nisolation = "process"\n[plugins.beta]\nisolation = "inline"\n'


def test_installed_plugins_run_in_workers(good_venv: KernelVenv) -> None:
    config = good_venv.work / "isolated.toml"
    config.write_text(CONFIG, encoding="utf-8")
    listed = good_venv.cli("--config", str(config), "plugins", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    isolation = {row["id"]: row["isolation"] for row in json.loads(listed.stdout)}
    assert isolation == {
        "alpha": "process",
        "beta": "inline",
        "gamma": "process",
        "hello": "process",
    }
    ran = good_venv.cli("--config", str(config), "run", "alpha", "x y")
    assert (ran.returncode, ran.stdout, ran.stderr) == (0, "alpha:x y\n", "")
    checked = good_venv.cli("--config", str(config), "plugins", "check")
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.splitlines()[-1] == "4 ok, 0 failed, 0 skipped, 0 disabled"
    info = good_venv.cli("--config", str(config), "plugins", "info", "hello", "--json")
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["isolation"] == "process"
    assert json.loads(info.stdout)["metadata"]["id"] == "hello"
