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


def test_the_table_shows_the_isolation_when_some_plugin_is_isolated(good_venv: KernelVenv) -> None:
    config = good_venv.work / "isolated.toml"
    config.write_text(CONFIG, encoding="utf-8")
    narrow = {"COLUMNS": "80"}
    for _ in range(2):  # computed, then replayed from the listing cache
        listed = good_venv.cli("--config", str(config), "plugins", "list", env=narrow)
        assert (listed.returncode, listed.stderr) == (0, "")
        header, *lines = listed.stdout.splitlines()
        assert header.split() == ["ID", "TYPE", "VERSION", "STATUS", "ISOLATION", "ABOUT"]
        assert max(map(len, listed.stdout.splitlines())) <= 80
        assert {line.split()[0]: line.split()[4] for line in lines} == {
            "alpha": "process",
            "beta": "inline",
            "gamma": "process",
            "hello": "process",
        }
    # Nothing isolated: the usual columns only; --wide always has the column.
    plain = good_venv.cli("plugins", "list", env=narrow)
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.splitlines()[0].split() == ["ID", "TYPE", "VERSION", "STATUS", "ABOUT"]
    wide_runs = [
        (("plugins", "list", "--wide"), "inline"),
        (("--config", str(config), "plugins", "list", "-v"), "process"),
    ]
    for argv, expected in wide_runs:
        wide = good_venv.cli(*argv)
        assert wide.returncode == 0, wide.stderr
        header, *lines = wide.stdout.splitlines()
        column = header.index("ISOLATION")
        assert header.split()[:7] == [
            "ID", "TYPE", "DISTRIBUTION", "VERSION", "ENABLED", "ISOLATION", "STATUS"
        ]  # fmt: skip
        alpha = next(line for line in lines if line.startswith("alpha "))
        assert alpha[column:].split()[0] == expected
