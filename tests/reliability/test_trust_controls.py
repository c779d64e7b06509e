"""Trust controls: what is excluded is never imported, and ``plugins list`` says where each
plugin comes from.

Three installed distributions (dist-info folders on ``sys.path``, read by
importlib.metadata exactly as pip's are) each carry one plugin whose module
writes a marker file when it is imported. Every way of excluding a plugin (the
autoload switch in the environment and in the configuration, ``MOFA_PLUGINS``,
allow and deny lists by plugin id and by distribution name, a disabled plugin
table) is tried through the library's ``discover()`` and through every CLI
command; the markers say what was imported.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from _fakesite import FakeSite
from mofa_kernel import PluginManager
from mofa_kernel._cli import main

PLUGIN = """\
import os
import pathlib

pathlib.Path(os.environ["MOFA_TEST_MARKERS"], "{pid}").write_text("imported")

from mofa_kernel import PluginMetadata, PluginType, hookimpl


@hookimpl
def plugin_metadata():
    return PluginMetadata("{pid}", "{pid}", PluginType.TOOL)


@hookimpl
def execute(input):
    return "{pid}:" + input
"""
#: Plugin id -> (distribution, version, module).
INSTALLED = {
    "alpha": ("trust-alpha", "1.0", "trust_alpha"),
    "beta": ("Trust_Beta", "2.1", "trust_beta"),
    "gamma": ("trust-gamma", "0.3", "trust_gamma"),
}
ALL = frozenset(INSTALLED)


@pytest.fixture
def installed(fake_site: FakeSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The three distributions installed; returns the folder the markers go to."""
    for pid, (dist, version, module) in INSTALLED.items():
        fake_site.add(
            dist,
            version,
            plugins={pid: module},
            files={f"{module}/__init__.py": PLUGIN.format(pid=pid)},
        )
    markers = tmp_path / "markers"
    markers.mkdir()
    monkeypatch.setenv("MOFA_TEST_MARKERS", str(markers))
    return markers


def imported(markers: Path) -> set[str]:
    return {marker.name for marker in markers.iterdir()} & ALL


def config_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "trust.toml"
    path.write_text(text, encoding="utf-8")
    return path


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


#: Exclusion -> (environment, configuration, the plugins that may load, the words of the
#: reason given for the others, or those words by plugin id).
EXCLUSIONS: dict[str, tuple[dict[str, str], str, set[str], str | dict[str, str]]] = {
    "autoload off (environment)": (
        {"MOFA_DISABLE_PLUGIN_AUTOLOAD": "1"}, "", set(), "MOFA_DISABLE_PLUGIN_AUTOLOAD"
    ),
    "autoload off (configuration)": ({}, "[kernel]\nautoload = false\n", set(), "kernel.autoload"),
    "MOFA_PLUGINS": ({"MOFA_PLUGINS": "beta"}, "", {"beta"}, "MOFA_PLUGINS"),
    "MOFA_PLUGINS empty": ({"MOFA_PLUGINS": ""}, "", set(), "MOFA_PLUGINS"),
    "allow by id": ({}, '[kernel]\nallow = ["alpha"]\n', {"alpha"}, "kernel.allow"),
    "allow by distribution": ({}, '[kernel]\nallow = ["trust-beta"]\n', {"beta"}, "kernel.allow"),
    "deny by id": ({}, '[kernel]\ndeny = ["alpha"]\n', {"beta", "gamma"}, "kernel.deny"),
    "deny by distribution": (
        {}, '[kernel]\ndeny = ["TRUST.GAMMA"]\n', {"alpha", "beta"}, "kernel.deny"
    ),
    "deny wins over allow": (
        {}, '[kernel]\nallow = ["alpha", "beta"]\ndeny = ["beta"]\n', {"alpha"},
        {"beta": "kernel.deny", "gamma": "kernel.allow"},
    ),
    "plugin table disabled": (
        {}, "[plugins.gamma]\nenabled = false\n", {"alpha", "beta"}, "plugins.gamma.enabled"
    ),
}  # fmt: skip


def _apply(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, set[str], dict[str, str]]:
    """Set up exclusion ``name``: the configuration file, the ids allowed, and per excluded id
    the words its reason must contain."""
    env, text, allowed, reason = EXCLUSIONS[name]
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    reasons = {pid: reason if isinstance(reason, str) else reason[pid] for pid in ALL - allowed}
    return config_file(tmp_path, text), allowed, reasons


@pytest.mark.parametrize("exclusion", list(EXCLUSIONS))
async def test_discover_never_imports_what_is_excluded(
    exclusion: str, installed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, allowed, reasons = _apply(exclusion, tmp_path, monkeypatch)
    async with PluginManager.from_config(config) as manager:
        report = manager.discover()
        ours = {r.plugin_id: r for r in report.records if r.plugin_id in ALL}
        assert set(ours) == ALL
        assert imported(installed) == allowed
        for pid, record in ours.items():
            if pid in allowed:
                assert record.status == "registered"
            else:
                assert record.status == "disabled"
                assert not record.enabled
                assert record.reason is not None
                assert reasons[pid] in record.reason
                assert record.metadata is None
        await manager.start_all()
        for pid in allowed:
            assert await manager.execute(pid, "x") == f"{pid}:x"
    assert imported(installed) == allowed


COMMANDS = {
    "plugins list": ["plugins", "list", "--json"],
    "plugins graph": ["plugins", "graph"],
    "plugins check": ["plugins", "check", "--json"],
    "plugins info (each)": None,
    "run (each)": None,
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("exclusion", list(EXCLUSIONS))
def test_commands_never_import_what_is_excluded(
    command: str,
    exclusion: str,
    installed: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config, allowed, reasons = _apply(exclusion, tmp_path, monkeypatch)
    prefix = ["--config", str(config)]
    if command == "plugins info (each)":
        for pid in sorted(ALL):
            code, out, _ = run_cli(*prefix, "plugins", "info", pid, "--json")
            data = json.loads(out)
            assert code == 0
            assert data["enabled"] is (pid in allowed)
            if pid not in allowed:
                assert data["status"] == "disabled"
                assert reasons[pid] in data["reason"]
    elif command == "run (each)":
        for pid in sorted(ALL):
            code, out, err = run_cli(*prefix, "run", pid, "x")
            if pid in allowed:
                assert (code, out) == (0, f"{pid}:x\n"), err
            else:
                assert code == 2
                assert "not enabled" in err
                assert reasons[pid] in err
    else:
        code, _, _ = run_cli(*prefix, *COMMANDS[command])
        assert code in (0, 1)
    expected = set() if command == "plugins list" else allowed
    assert imported(installed) == expected


def test_list_shows_distribution_version_and_path(installed: Path, fake_site: FakeSite) -> None:
    code, out, _ = run_cli("plugins", "list", "--json")
    assert code == 0
    rows = {row["id"]: row for row in json.loads(out) if row["id"] in ALL}
    assert set(rows) == ALL
    for pid, (dist, version, module) in INSTALLED.items():
        row = rows[pid]
        assert row["distribution"] == dist
        assert row["distribution_version"] == version
        assert Path(row["path"]) == fake_site.root / module / "__init__.py"
    assert imported(installed) == set()


def test_list_table_shows_the_path(installed: Path, fake_site: FakeSite) -> None:
    # The default table fits the terminal; --wide shows where each plugin comes from.
    code, out, _ = run_cli("plugins", "list", "--wide")
    assert code == 0
    lines = {line.split()[0]: line for line in out.splitlines()[1:] if line.strip()}
    for pid, (dist, version, module) in INSTALLED.items():
        assert dist in lines[pid]
        assert version in lines[pid]
        assert str(fake_site.root / module / "__init__.py") in lines[pid]


def test_info_shows_where_a_plugin_comes_from(installed: Path, fake_site: FakeSite) -> None:
    code, out, _ = run_cli("plugins", "info", "beta")
    assert code == 0
    assert "Trust_Beta 2.1" in out
    assert str(fake_site.root / "trust_beta" / "__init__.py") in out
