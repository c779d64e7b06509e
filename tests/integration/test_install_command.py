"""``mofa-kernel plugins install`` / ``uninstall``: pip in the kernel's environment, then a summary.

A real local distribution (a wheel built by the session's kernel virtualenv
fixture) is installed and removed by the virtualenv's own ``mofa-kernel``
script; the summary names the plugin ids that appeared and disappeared, and
nothing is imported on the way.
"""

from __future__ import annotations

import json

import pytest
from _kernel_venv import KernelVenv

pytestmark = pytest.mark.integration


def test_install_then_uninstall_a_local_distribution(good_venv: KernelVenv) -> None:
    wheel = good_venv.wheel("mkt-tripwire")
    env = {"PIP_NO_INDEX": "1"}  # a local wheel whose requirements are met: no index needed
    try:
        result = good_venv.cli("plugins", "install", str(wheel), env=env, timeout=300)
        assert result.returncode == 0, result.stderr
        assert result.stdout == "added plugin tripwire (mkt-tripwire 1.0)\n"
        assert "mkt-tripwire" in result.stderr  # pip's own words go to stderr
        listed = json.loads(good_venv.cli("plugins", "list", "--json").stdout)
        assert "tripwire" in {row["id"] for row in listed}
        assert good_venv.imported() == set()  # installing imports nothing

        again = good_venv.cli("plugins", "install", str(wheel), env=env, timeout=300)
        assert again.stdout == "no plugin was added, removed or updated\n"
    finally:
        result = good_venv.cli("plugins", "uninstall", "mkt-tripwire", timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "removed plugin tripwire (mkt-tripwire 1.0)\n"
    listed = json.loads(good_venv.cli("plugins", "list", "--json").stdout)
    assert "tripwire" not in {row["id"] for row in listed}


def test_with_the_trust_lock_on_it_says_how_to_approve(good_venv: KernelVenv) -> None:
    config = good_venv.work / "trusting.toml"
    config.write_text('[kernel]\ntrust = "refuse"\n', encoding="utf-8")
    approved = good_venv.cli("--config", str(config), "plugins", "approve", "--all")
    assert approved.returncode == 0, approved.stderr
    wheel = good_venv.wheel("mkt-tripwire")
    try:
        result = good_venv.cli(
            "--config", str(config), "plugins", "install", str(wheel),
            env={"PIP_NO_INDEX": "1"}, timeout=300,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == [
            "added plugin tripwire (mkt-tripwire 1.0)",
            "the trust lock is on: approve what you trust with "
            "'mofa-kernel plugins approve mkt-tripwire'",
        ]
    finally:
        good_venv.cli("plugins", "uninstall", "mkt-tripwire", timeout=300)
        (good_venv.work / "mofa-trust.json").unlink(missing_ok=True)


def test_a_failing_pip_exits_1(good_venv: KernelVenv) -> None:
    result = good_venv.cli(
        "plugins", "install", str(good_venv.work / "no-such-folder"), env={"PIP_NO_INDEX": "1"}
    )
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.splitlines()[-1] == (
        "mofa-kernel: pip install failed (exit status 1); nothing else was done"
    )
