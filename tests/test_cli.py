"""The command line in-process: ``main(argv)`` over fake installed distributions, output via capsys.

The subprocess runs of the installed ``mofa-kernel`` script are in
tests/integration/test_cli_installed.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from _fakesite import FakeSite, fake_site
from mofa_kernel._cli import build_parser, main
from mofa_kernel._cli._output import format_table

ALPHA = """\
from mofa_kernel import AgentPlugin, PluginMetadata, PluginPriority, PluginType

class AlphaPlugin(AgentPlugin):
    metadata = PluginMetadata("alpha", "Alpha", PluginType.TOOL, version="2.0",
                              priority=PluginPriority.HIGH, capabilities=("echo",))

    async def init_plugin(self):
        self.prefix = self.context.config.get_string("prefix", "alpha")

    async def execute(self, input):
        return f"{self.prefix}:{input}"
"""

BETA = """\
from mofa_kernel import PluginMetadata, PluginType, hookimpl

@hookimpl
def plugin_metadata():
    return PluginMetadata("beta", "Beta", PluginType.SKILL, dependencies=("alpha",))

@hookimpl
async def execute(input):
    return "beta:" + input
"""

NEEDY = """\
from mofa_kernel import PluginMetadata, PluginType, hookimpl

@hookimpl
def plugin_metadata():
    return PluginMetadata("needy", "Needy", PluginType.TOOL, dependencies=("ghost",))

@hookimpl
def execute(input):
    return input
"""

GATED = """\
from mofa_kernel import PluginMetadata, PluginType, hookimpl

@hookimpl
def plugin_metadata():
    return PluginMetadata("gated", "Gated", PluginType.TOOL)

@hookimpl
def execute(input):
    return input
"""

SOUR = """\
from mofa_kernel import AgentPlugin, PluginMetadata, PluginType

class SourPlugin(AgentPlugin):
    metadata = PluginMetadata("sour", "Sour", PluginType.TOOL)

    async def execute(self, input):
        raise ValueError("cannot digest " + input)
"""

TWIN = """\
from mofa_kernel import AgentPlugin, PluginMetadata, PluginType

class TwinPlugin(AgentPlugin):
    metadata = PluginMetadata("twin", "Twin", PluginType.TOOL)

    async def execute(self, input):
        return input
"""

OURS = "alpha,beta,broken,gated,needy,sour,twin,future"


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSite]:
    monkeypatch.delenv("MOFA_CONFIG", raising=False)
    monkeypatch.delenv("MOFA_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.setenv("MOFA_PLUGINS", OURS)
    monkeypatch.chdir(tmp_path)
    yield from fake_site(tmp_path, monkeypatch)


@pytest.fixture
def installed(site: FakeSite) -> FakeSite:
    site.add("mkt-alpha", "2.0", plugins={"alpha": "mkt_alpha:AlphaPlugin"},
             files={"mkt_alpha.py": ALPHA}, requires=["mofa-kernel>=0.1"])  # fmt: skip
    site.add("mkt-beta", "1.0", plugins={"beta": "mkt_beta"}, files={"mkt_beta.py": BETA},
             requires=["mkt-alpha", "mofa-kernel"])  # fmt: skip
    site.add("mkt-broken", "0.1", plugins={"broken": "mkt_broken:Plugin"},
             files={"mkt_broken.py": "\nraise RuntimeError('broken on purpose')\n"})  # fmt: skip
    return site


@pytest.fixture
def troubled(installed: FakeSite) -> FakeSite:
    site = installed
    site.add("mkt-gated", plugins={"gated": "mkt_gated"}, files={"mkt_gated.py": GATED})
    site.add("mkt-needy", plugins={"needy": "mkt_needy"}, files={"mkt_needy.py": NEEDY})
    site.add("mkt-sour", plugins={"sour": "mkt_sour:SourPlugin"}, files={"mkt_sour.py": SOUR})
    site.add("mkt-twin-one", plugins={"twin": "mkt_twin1:TwinPlugin"},
             files={"mkt_twin1.py": TWIN})  # fmt: skip
    site.add("mkt-twin-two", plugins={"twin": "mkt_twin2:TwinPlugin"},
             files={"mkt_twin2.py": TWIN})  # fmt: skip
    site.add("mkt-future", plugins={"future": "mkt_future:Plugin"},
             files={"mkt_future.py": "raise RuntimeError('imported')\n"},
             requires=["mofa-kernel>=99"])  # fmt: skip
    return site


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    code, out, _ = run(capsys, *argv)
    return code, json.loads(out)


def ours(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [row for row in rows if (row.get("distribution") or "").startswith("mkt-")]


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "kernel.toml"
    path.write_text(text, encoding="utf-8")
    return path


# -- parser ----------------------------------------------------------------------------


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    code, out, _ = run(capsys, "--version")
    assert code == 0
    assert out.strip() == f"mofa-kernel {version('mofa-kernel')}"


@pytest.mark.parametrize(
    "argv",
    [["plugins", "nope"], ["run", "alpha"], ["plugins", "graph", "--format", "x"],
     ["--bogus", "plugins", "list"]],
)  # fmt: skip
def test_bad_usage_exits_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert "usage: mofa-kernel" in err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    assert "plugins" in out
    assert "run" in out


def test_parser_has_the_contract_commands() -> None:
    parser = build_parser()
    args = parser.parse_args(["--config", "f.toml", "plugins", "graph", "--format", "dot"])
    assert (args.config, args.plugins_command, args.format) == ("f.toml", "graph", "dot")
    args = parser.parse_args(["run", "alpha", "some input"])
    assert (args.plugin_id, args.input) == ("alpha", "some input")
    for sub in ("list", "info", "check"):
        argv = ["plugins", sub, "--json"] + (["x"] if sub == "info" else [])
        assert parser.parse_args(argv).json is True


def test_format_table() -> None:
    assert format_table(["A", "LONGER"], [["wide cell", "x"], ["b", ""]]) == (
        "A          LONGER\nwide cell  x\nb"
    )


# -- plugins list --------------------------------------------------------------------------


def test_list_json_shows_every_plugin_and_imports_none(
    troubled: FakeSite, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, "[plugins.gated]\nenabled = false\n")
    code, rows = run_json(capsys, "--config", str(config), "plugins", "list", "--json")
    assert code == 0
    rows = ours(rows)
    assert [(r["id"], r["distribution"]) for r in rows] == [
        ("alpha", "mkt-alpha"),
        ("beta", "mkt-beta"),
        ("broken", "mkt-broken"),
        ("future", "mkt-future"),
        ("gated", "mkt-gated"),
        ("needy", "mkt-needy"),
        ("sour", "mkt-sour"),
        ("twin", "mkt-twin-one"),
        ("twin", "mkt-twin-two"),
    ]
    by_id = {r["id"]: r for r in rows}
    assert by_id["alpha"] == {
        "id": "alpha",
        "distribution": "mkt-alpha",
        "distribution_version": "2.0",
        "entry_point": "mkt_alpha:AlphaPlugin",
        "enabled": True,
        "isolation": "inline",
        "status": "discovered",
        "reason": None,
        "path": str(troubled.root / "mkt_alpha.py"),
        "requires_kernel": ">=0.1",
        "metadata": None,
    }
    assert (by_id["gated"]["enabled"], by_id["gated"]["status"]) == (False, "disabled")
    assert by_id["gated"]["reason"] == "disabled by plugins.gated.enabled"
    assert by_id["future"]["status"] == "failed"
    assert "requires mofa-kernel>=99" in by_id["future"]["reason"]
    twins = [r for r in rows if r["id"] == "twin"]
    assert all(r["status"] == "failed" and "mkt-twin-one" in r["reason"] for r in twins)
    assert not {m for m in sys.modules if m.startswith("mkt_")}


def test_list_excluded_by_environment(
    installed: FakeSite, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MOFA_PLUGINS", "alpha")
    _, rows = run_json(capsys, "plugins", "list", "--json")
    reasons = {r["id"]: r["reason"] for r in ours(rows)}
    assert reasons == {
        "alpha": None,
        "beta": "not in MOFA_PLUGINS",
        "broken": "not in MOFA_PLUGINS",
    }


def test_list_table(
    installed: FakeSite, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    code, out, err = run(capsys, "plugins", "list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "TYPE", "VERSION", "STATUS", "ABOUT"]
    alpha = next(line for line in lines if line.startswith("alpha "))
    assert alpha.split()[:4] == ["alpha", "-", "2.0", "discovered"]  # type unknown until loaded
    broken = next(line for line in lines if line.startswith("broken "))
    assert broken.split()[3] == "discovered"
    assert err == ""
    # Once loaded (run), the cached metadata fills TYPE and the description in.
    assert run(capsys, "run", "alpha", "x")[0] == 0
    out = run(capsys, "plugins", "list")[1]
    alpha = next(line for line in out.splitlines() if line.startswith("alpha "))
    assert alpha.split()[:4] == ["alpha", "Tool", "2.0", "discovered"]


LONG = """\
from mofa_kernel import AgentPlugin, PluginMetadata, PluginType

class LongPlugin(AgentPlugin):
    metadata = PluginMetadata(
        "a-plugin-with-a-rather-long-identifier-indeed", "Long", PluginType.custom("summariser"),
        description="Summarises very long documents. " * 10,
    )

    async def execute(self, input):
        return input
"""


@pytest.mark.parametrize("columns", [80, 120])
def test_list_fits_the_terminal_and_wide_shows_everything(
    site: FakeSite,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    columns: int,
) -> None:
    pid = "a-plugin-with-a-rather-long-identifier-indeed"
    site.add("mkt-long-distribution-name", "10.20.30", plugins={pid: "mkt_long:LongPlugin"},
             files={"mkt_long.py": LONG})  # fmt: skip
    monkeypatch.setenv("MOFA_PLUGINS", pid)
    monkeypatch.setenv("COLUMNS", str(columns))
    assert run(capsys, "run", pid, "x")[0] == 0  # caches the metadata
    for _ in range(2):  # computed, then replayed from the cache
        code, out, _ = run(capsys, "plugins", "list")
        assert code == 0
        lines = out.splitlines()
        assert max(map(len, lines)) <= columns
        assert lines[1].split()[1:4] == ["Custom(summariser)", "10.20.30", "discovered"]
        assert "Summarises" in lines[1]
        assert lines[1].endswith("...")
    for option in ("--wide", "-v"):
        code, out, _ = run(capsys, "plugins", "list", option)
        row = out.splitlines()[1]
        assert row.startswith(f"{pid} ")
        assert "mkt-long-distribution-name" in row
        assert "mkt_long:LongPlugin" in row
        assert row.endswith("Summarises very long documents.")
        assert len(row) > 200


def test_check_table_shows_why_a_plugin_failed(
    troubled: FakeSite, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    code, out, _ = run(capsys, "plugins", "check")
    assert code == 1
    rows = {line.split()[0]: line for line in out.splitlines()[1:] if line.strip()}
    assert "broken on purpose" in rows["broken"]
    assert rows["needy"].split()[1] == "skipped"
    assert "ghost" in rows["needy"]


def test_list_reports_unreadable_distributions(
    installed: FakeSite, capsys: pytest.CaptureFixture[str]
) -> None:
    installed.add("mkt-unreadable", entry_points_text="[mofa.plugins]\nno equals sign\n")
    code, out, err = run(capsys, "plugins", "list", "--json")
    assert code == 0
    assert json.loads(out)
    warnings = [line for line in err.splitlines() if "mkt-unreadable" in line]
    assert len(warnings) == 1
    assert warnings[0].startswith("mofa-kernel: warning: mkt-unreadable: unreadable entry points")


def test_run_reports_unreadable_distributions_once(
    installed: FakeSite, capsys: pytest.CaptureFixture[str]
) -> None:
    installed.add("mkt-unreadable", entry_points_text="[mofa.plugins]\nno equals sign\n")
    code, out, err = run(capsys, "run", "alpha", "x")
    assert (code, out) == (0, "alpha:x\n")
    (warning,) = [line for line in err.splitlines() if "mkt-unreadable" in line]
    assert warning.startswith("mofa-kernel: warning: mkt-unreadable: unreadable entry points (")
    assert warning.endswith("); skipped")


# -- plugins info --------------------------------------------------------------------------


def test_info_json_is_one_object_with_metadata(
    installed: FakeSite, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(
        tmp_path, '[plugins.alpha]\ntimeout = 4.5\n[plugins.alpha.settings]\nprefix = "A"\n'
    )
    code, data = run_json(capsys, "--config", str(config), "plugins", "info", "alpha", "--json")
    assert code == 0
    assert data["id"] == "alpha"
    assert data["status"] == "discovered"
    assert data["error"] is None
    assert data["metadata"] == {
        "id": "alpha",
        "name": "Alpha",
        "version": "2.0",
        "description": "",
        "plugin_type": "Tool",
        "priority": "High",
        "dependencies": [],
        "capabilities": ["echo"],
        "author": None,
    }
    assert data["config"] == {"settings": {"prefix": "A"}, "enabled": True, "auto_start": True}
    assert data["timeout"] == 4.5


def test_info_table(installed: FakeSite, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "plugins", "info", "beta")
    assert code == 0
    fields = dict(line.split(":", 1) for line in out.splitlines())
    assert fields["dependencies"].strip() == "alpha"
    assert fields["type"].strip() == "Skill"
    assert fields["requires"].strip() == "mofa-kernel (any)"


def test_info_of_a_disabled_plugin_does_not_import_it(
    troubled: FakeSite, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MOFA_PLUGINS", "alpha")
    code, data = run_json(capsys, "plugins", "info", "gated", "--json")
    assert code == 0
    assert (data["status"], data["reason"], data["metadata"]) == (
        "disabled",
        "not in MOFA_PLUGINS",
        None,
    )
    assert "mkt_gated" not in sys.modules


def test_info_of_a_broken_plugin(installed: FakeSite, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "plugins", "info", "broken", "--json")
    assert code == 1
    data = json.loads(out)
    assert data["status"] == "failed"
    assert "RuntimeError: broken on purpose (mkt_broken.py:2)" in data["error"]
    code, out, err = run(capsys, "plugins", "info", "broken")
    assert code == 1
    assert err.splitlines() == [f"mofa-kernel: broken: {data['error']}"]


def test_info_of_an_unknown_plugin(installed: FakeSite, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "plugins", "info", "nobody")
    assert code == 2
    assert out == ""
    assert err.startswith("mofa-kernel: unknown plugin id 'nobody' (known: ")


# -- plugins check -------------------------------------------------------------------------


def test_check_all_ok(installed: FakeSite, monkeypatch: pytest.MonkeyPatch,
                      capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    monkeypatch.setenv("MOFA_PLUGINS", "alpha,beta")
    code, out, err = run(capsys, "plugins", "check")
    assert code == 0, err
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[1:] if line.strip()}
    assert rows["alpha"] == ["ok", "Unloaded"]
    assert rows["beta"] == ["ok", "Unloaded"]
    assert "2 ok, 0 failed, 0 skipped" in out
    assert err == ""


def test_check_reports_each_plugin(
    troubled: FakeSite, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, "[plugins.gated]\nenabled = false\n")
    code, rows = run_json(capsys, "--config", str(config), "plugins", "check", "--json")
    assert code == 1
    by_id = {r["id"]: r for r in ours(rows)}
    assert set(by_id) == {"alpha", "beta", "broken", "future", "gated", "needy", "sour", "twin"}
    for ok in ("alpha", "beta", "sour"):
        assert (by_id[ok]["status"], by_id[ok]["state"], by_id[ok]["error"]) == (
            "ok",
            "Unloaded",
            None,
        )
    assert by_id["gated"]["status"] == "disabled"
    assert by_id["gated"]["reason"] == "disabled by plugins.gated.enabled"
    assert "mkt_gated" not in sys.modules
    broken = by_id["broken"]
    assert broken["status"] == "failed"
    assert "RuntimeError: broken on purpose" in broken["error"]
    assert broken["state"] == {"Error": broken["state"]["Error"]}
    assert by_id["twin"]["status"] == "failed"
    assert "mkt-twin-one" in by_id["twin"]["error"]
    assert "mkt-twin-two" in by_id["twin"]["error"]
    assert by_id["future"]["status"] == "failed"
    assert "mofa-kernel>=99" in by_id["future"]["error"]
    assert "mkt_future" not in sys.modules
    assert by_id["needy"]["status"] == "skipped"
    assert "ghost" in by_id["needy"]["error"]


def test_check_table_puts_errors_on_stderr(
    installed: FakeSite, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "plugins", "check")
    assert code == 1
    rows = {line.split()[0]: line.split()[1:3] for line in out.splitlines()[1:] if line.strip()}
    assert rows["broken"] == ["failed", "Error"]
    assert "2 ok, 1 failed, 0 skipped, " in out
    lines = err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("mofa-kernel: broken: failed: cannot import plugin 'broken'")


def test_check_brings_up_plugins_that_do_not_auto_start(
    installed: FakeSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setenv("MOFA_PLUGINS", "alpha")
    config = write_config(tmp_path, "[plugins.alpha]\nauto_start = false\n")
    code, rows = run_json(capsys, "--config", str(config), "plugins", "check", "--json")
    assert code == 0
    statuses = {r["id"]: r["status"] for r in ours(rows)}
    assert statuses == {"alpha": "ok", "beta": "disabled", "broken": "disabled"}


def test_check_with_nothing_enabled(
    installed: FakeSite, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MOFA_DISABLE_PLUGIN_AUTOLOAD", "1")
    code, rows = run_json(capsys, "plugins", "check", "--json")
    assert code == 0
    assert {r["status"] for r in rows} == {"disabled"}
    assert {r["reason"] for r in rows} == {"autoload disabled by MOFA_DISABLE_PLUGIN_AUTOLOAD"}


# -- plugins graph -------------------------------------------------------------------------


def test_graph_mermaid(troubled: FakeSite, monkeypatch: pytest.MonkeyPatch,
                       capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    monkeypatch.setenv("MOFA_PLUGINS", "alpha,beta,needy")
    code, out, err = run(capsys, "plugins", "graph")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "graph TD"
    assert "    beta --> alpha" in lines
    assert "    needy --> ghost" in lines
    assert "    class ghost missing" in lines


def test_graph_dot(installed: FakeSite, monkeypatch: pytest.MonkeyPatch,
                   capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    monkeypatch.setenv("MOFA_PLUGINS", "alpha,beta")
    code, out, _ = run(capsys, "plugins", "graph", "--format", "dot")
    assert code == 0
    assert out.splitlines() == [
        "digraph plugins {",
        '    "alpha";',
        '    "beta";',
        '    "beta" -> "alpha";',
        "}",
    ]


def test_graph_names_awkward_ids_safely(
    site: FakeSite, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MOFA_PLUGINS", "my-tool,end")
    text = NEEDY.replace('"needy"', '"my-tool"').replace('"ghost"', '"end"')
    site.add("mkt-my-tool", plugins={"my-tool": "mkt_mytool"}, files={"mkt_mytool.py": text})
    code, out, _ = run(capsys, "plugins", "graph")
    assert code == 0
    assert out.splitlines()[1:4] == ['    n1["my-tool"]', '    n2["end"]', "    n1 --> n2"]


def test_graph_with_a_broken_plugin_exits_1(
    installed: FakeSite, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "plugins", "graph")
    assert code == 1
    assert "    beta --> alpha" in out.splitlines()
    assert err.startswith("mofa-kernel: broken: cannot import plugin 'broken'")


# -- run -----------------------------------------------------------------------------------


def test_run_prints_the_output(installed: FakeSite, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    code, out, err = run(capsys, "run", "alpha", "hi there")
    assert (code, out, err) == (0, "alpha:hi there\n", "")
    config = write_config(tmp_path, '[plugins.alpha.settings]\nprefix = "A"\n')
    assert run(capsys, "--config", str(config), "run", "alpha", "x") == (0, "A:x\n", "")


def test_run_starts_dependencies(installed: FakeSite, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "run", "beta", "go") == (0, "beta:go\n", "")


def test_run_uses_mofa_config(
    installed: FakeSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    config = write_config(tmp_path, '[plugins.alpha.settings]\nprefix = "env"\n')
    monkeypatch.setenv("MOFA_CONFIG", str(config))
    assert run(capsys, "run", "alpha", "x") == (0, "env:x\n", "")


def test_run_a_plugin_that_is_not_enabled_exits_2(
    troubled: FakeSite, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, '[kernel]\ndeny = ["mkt-gated"]\n')
    code, out, err = run(capsys, "--config", str(config), "run", "gated", "x")
    assert (code, out) == (2, "")
    assert err == "mofa-kernel: plugin 'gated' is not enabled: denied by kernel.deny\n"
    assert "mkt_gated" not in sys.modules


def test_run_an_unknown_plugin_exits_2(
    installed: FakeSite, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "run", "nobody", "x")
    assert (code, out) == (2, "")
    assert "unknown plugin id 'nobody'" in err


@pytest.mark.parametrize(
    ("plugin_id", "error"),
    [
        ("broken", "RuntimeError: broken on purpose (mkt_broken.py:2)"),
        ("sour", "ValueError: cannot digest x"),
        ("needy", "missing dependency 'ghost'"),
        ("twin", "is claimed by 2 entry points"),
        ("future", "requires mofa-kernel>=99"),
    ],
)
def test_run_a_failing_plugin_exits_1(
    troubled: FakeSite, capsys: pytest.CaptureFixture[str], plugin_id: str, error: str
) -> None:
    code, out, err = run(capsys, "run", plugin_id, "x")
    assert (code, out) == (1, "")
    lines = err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"mofa-kernel: {plugin_id}: ")
    assert error in lines[0]


# -- configuration errors ------------------------------------------------------------------


def test_a_bad_config_file_exits_2_with_one_line_per_problem(
    installed: FakeSite, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, "[kernel]\nbogus = 1\n[plugins.calculator]\nenabled = 'yes'\n")
    for argv in (["plugins", "check"], ["plugins", "list"], ["run", "alpha", "x"]):
        code, out, err = run(capsys, "--config", str(config), *argv)
        assert (code, out) == (2, "")
        assert err.splitlines() == [
            f"mofa-kernel: {config}: kernel.bogus: unknown key",
            f"mofa-kernel: {config}: plugins.calculator.enabled: expected a boolean, got a string",
        ]


def test_a_missing_config_file_exits_2(
    installed: FakeSite, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "--config", str(tmp_path / "nope.toml"), "plugins", "list")
    assert code == 2
    assert err == f"mofa-kernel: {tmp_path / 'nope.toml'}: configuration file not found\n"


def test_mofa_toml_in_the_working_directory(
    installed: FakeSite, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "mofa.toml").write_text('[kernel]\ndeny = ["alpha"]\n', encoding="utf-8")
    _, rows = run_json(capsys, "plugins", "list", "--json")
    assert {r["id"]: r["status"] for r in ours(rows)}["alpha"] == "disabled"


# -- import weight -------------------------------------------------------------------------


def test_importing_the_package_imports_neither_cli_nor_config() -> None:
    code = (
        "import sys, mofa_kernel\n"
        "print(sorted(m for m in sys.modules if m.startswith(('mofa_kernel._cli', "
        "'mofa_kernel._config', 'mofa_kernel._discovery', 'argparse'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_python_dash_m(installed: FakeSite) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mofa_kernel", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert result.stdout.startswith("mofa-kernel ")


def test_bare_command_prints_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys)
    assert (code, err) == (0, "")
    assert out.startswith("usage: mofa-kernel ")
    assert "new-plugin" in out
    code, out, err = run(capsys, "plugins")
    assert (code, err) == (0, "")
    assert out.startswith("usage: mofa-kernel plugins ")
    assert "check" in out


def test_a_misspelt_id_gets_the_close_one(
    installed: FakeSite, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "run", "alpah", "x")
    assert (code, out) == (2, "")
    assert "unknown plugin id 'alpah'; did you mean 'alpha'?" in err


def test_install_summary_lines() -> None:
    from mofa_kernel._cli._install import changes

    before = {"a": ("dist-a", "1.0"), "b": ("dist-b", "1.0"), "c": ("dist-c", "1.0")}
    after = {"a": ("dist-a", "1.0"), "b": ("dist-b", "2.0"), "d": ("dist-d", "0.3")}
    assert changes(before, after) == [
        "updated plugin b (dist-b 1.0 -> dist-b 2.0)",
        "removed plugin c (dist-c 1.0)",
        "added plugin d (dist-d 0.3)",
    ]
    assert changes(before, before) == []
