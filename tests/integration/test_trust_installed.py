"""The trust lock end to end: real wheels installed by pip, approved, then tampered with."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _kernel_venv import GOOD, KernelVenv

pytestmark = pytest.mark.integration


def _statuses(venv: KernelVenv) -> dict[str, tuple[str, str | None]]:
    result = venv.cli("plugins", "list", "--json")
    assert result.returncode == 0, result.stderr
    return {row["id"]: (row["status"], row["reason"]) for row in json.loads(result.stdout)}


def test_refuse_mode_loads_only_what_was_approved_as_installed(good_venv: KernelVenv) -> None:
    config = good_venv.work / "mofa.toml"
    config.write_text('[kernel]\ntrust = "refuse"\n', encoding="utf-8")
    lock = good_venv.work / "mofa-trust.json"
    lock.unlink(missing_ok=True)
    try:
        # No lock yet: the configuration asks for one, so every command says so.
        missing = good_venv.cli("plugins", "list")
        assert missing.returncode == 2
        assert "trust lock not found" in missing.stderr

        approved = good_venv.cli("plugins", "approve", "mkt-alpha")
        assert approved.returncode == 0, approved.stderr
        assert approved.stdout.startswith("approved mkt-alpha 1.0 (")
        statuses = _statuses(good_venv)
        assert statuses["alpha"] == ("discovered", None)
        status, reason = statuses["beta"]
        assert status == "disabled"
        assert reason == "refused by the trust lock: mkt-beta: not approved"

        everything = good_venv.cli("plugins", "approve", "--all")
        assert everything.returncode == 0, everything.stderr
        assert {s for s, _ in _statuses(good_venv).values()} == {"discovered"}
        assert good_venv.cli("plugins", "check").returncode == 0

        # Edit an approved plugin's installed code: it is refused, and never imported.
        module = Path(json.loads(good_venv.cli("plugins", "list", "--json").stdout)[0]["path"])
        module.write_text(module.read_text(encoding="utf-8") + "\n# tampered\n", encoding="utf-8")
        good_venv.clear_markers()
        status, reason = _statuses(good_venv)["alpha"]
        assert status == "disabled"
        assert reason is not None
        assert reason.startswith("refused by the trust lock: mkt-alpha: changed since approval")
        assert "modified" in reason
        run = good_venv.cli("run", "alpha", "x")
        assert run.returncode == 2
        assert "refused by the trust lock" in run.stderr
        assert "mkt_alpha" not in good_venv.imported()
    finally:
        config.unlink(missing_ok=True)
        lock.unlink(missing_ok=True)
        good_venv.uninstall(*GOOD)  # put back the untouched wheels for the other tests
        good_venv.install(*GOOD)


def test_warn_mode_reports_and_still_loads(good_venv: KernelVenv) -> None:
    config = good_venv.work / "mofa.toml"
    config.write_text('[kernel]\ntrust = "warn"\n', encoding="utf-8")
    lock = good_venv.work / "mofa-trust.json"
    lock.write_text('{"version": 1, "approved": {}}\n', encoding="utf-8")
    try:
        result = good_venv.cli("run", "alpha", "x")
        assert result.returncode == 0, result.stderr
        assert "mofa-kernel: warning: plugin 'alpha' from mkt-alpha: not approved" in result.stderr
    finally:
        config.unlink(missing_ok=True)
        lock.unlink(missing_ok=True)
