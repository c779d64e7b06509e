"""The cache against real pip: install, uninstall and a same-version reinstall are seen at once.

Each step first lets the installation settle, so that the listing before the
change comes from a stored scan: what is checked is that pip's change
invalidates it, not merely that a fresh installation is scanned.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from _kernel_venv import GAMMA, KernelVenv, _build_wheels, write_distribution

from mofa_kernel import _cache

pytestmark = pytest.mark.integration


def settle() -> None:
    """Let what pip just wrote grow old enough for the cache to store a fingerprint of it."""
    time.sleep(_cache.SETTLE_NS / 1e9 + 0.2)


def listing(venv: KernelVenv, cache: Path) -> dict[str, dict[str, Any]]:
    result = venv.cli("plugins", "list", "--json", env={"MOFA_CACHE_DIR": str(cache)})
    assert result.returncode == 0, result.stderr
    return {row["id"]: row for row in json.loads(result.stdout)}


def stored_listings(cache: Path) -> int:
    return sum(len(json.loads(p.read_text())["listings"]) for p in cache.glob("scan-*.json"))


def test_pip_changes_are_never_hidden_by_the_cache(good_venv: KernelVenv, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    env = {"MOFA_CACHE_DIR": str(cache)}
    settle()
    assert {"alpha", "beta", "gamma", "hello"} <= set(listing(good_venv, cache))
    assert stored_listings(cache) == 1
    check = good_venv.cli("plugins", "check", env=env)
    assert check.returncode == 0, check.stderr
    alpha = listing(good_venv, cache)["alpha"]["metadata"]
    assert alpha is not None
    assert (alpha["id"], alpha["name"], alpha["priority"]) == ("alpha", "Alpha", "High")

    good_venv.uninstall("mkt-gamma")
    assert "gamma" not in listing(good_venv, cache)
    settle()
    assert "gamma" not in listing(good_venv, cache)
    assert stored_listings(cache) == 1

    good_venv.install("mkt-gamma")
    assert "gamma" in listing(good_venv, cache)

    # The same name and version, rebuilt with another entry point, reinstalled over it.
    project = write_distribution(
        tmp_path / "rebuilt",
        "mkt-gamma",
        modules={"mkt_gamma": GAMMA},
        plugins={"gamma-renamed": "mkt_gamma:make"},
    )
    _build_wheels([project], tmp_path / "wheels")
    (rebuilt,) = (tmp_path / "wheels").glob("mkt_gamma-1.0-*.whl")
    settle()
    before = listing(good_venv, cache)
    assert "gamma" in before
    assert "gamma-renamed" not in before
    try:
        good_venv.pip("install", "--no-deps", "--force-reinstall", rebuilt)
        after = listing(good_venv, cache)
        assert "gamma-renamed" in after
        assert "gamma" not in after
        assert after["gamma-renamed"]["distribution_version"] == "1.0"
    finally:
        good_venv.pip("install", "--no-deps", "--force-reinstall", good_venv.wheel("mkt-gamma"))
    assert "gamma" in listing(good_venv, cache)


def test_cache_clear_from_the_installed_command(good_venv: KernelVenv, tmp_path: Path) -> None:
    env = {"MOFA_CACHE_DIR": str(tmp_path / "cache")}
    settle()
    listing(good_venv, tmp_path / "cache")
    info = good_venv.cli("cache", "info", "--json", env=env)
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["files"]
    cleared = good_venv.cli("cache", "clear", env=env)
    assert cleared.returncode == 0
    assert cleared.stdout.startswith("removed ")
    assert not list((tmp_path / "cache").glob("*.json"))
    off = good_venv.cli("plugins", "list", "--json", env={**env, "MOFA_NO_CACHE": "1"})
    assert off.returncode == 0
    assert not list((tmp_path / "cache").glob("*.json"))
