"""The installed ``mofa-kernel`` script over plugin distributions that pip really installed.

The fixtures (conftest.py) build one virtualenv per session; ``good_venv``
has only healthy plugins installed, ``troubled_venv`` adds every kind of
broken one beside them.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
from _kernel_venv import GOOD, TROUBLED, KernelVenv

pytestmark = pytest.mark.integration

LIST_KEYS = {
    "id",
    "distribution",
    "distribution_version",
    "entry_point",
    "enabled",
    "isolation",
    "status",
    "reason",
    "path",
    "requires_kernel",
    "metadata",
}
CHECK_KEYS = {"id", "status", "state", "error", "reason", "distribution", "entry_point"}


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    try:
        return json.loads(result.stdout)
    except ValueError:
        pytest.fail(f"not JSON (exit {result.returncode}):\n{result.stdout}\n{result.stderr}")


def by_id(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["id"]: row for row in rows}


# -- a healthy installation ------------------------------------------------------------------


def test_list_json_shows_the_installed_plugins(good_venv: KernelVenv) -> None:
    result = good_venv.cli("plugins", "list", "--json")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    rows = as_json(result)
    assert all(set(row) == LIST_KEYS for row in rows)
    assert [(r["id"], r["distribution"], r["distribution_version"]) for r in rows] == [
        ("alpha", "mkt-alpha", "1.0"),
        ("beta", "mkt-beta", "1.0"),
        ("gamma", "mkt-gamma", "1.0"),
        ("hello", "mofa-sample-hello", "0.1.0"),
    ]
    alpha = by_id(rows)["alpha"]
    assert alpha["entry_point"] == "mkt_alpha:AlphaPlugin"
    assert (alpha["enabled"], alpha["status"], alpha["metadata"]) == (True, "discovered", None)
    assert alpha["requires_kernel"] == ">=0.1"
    assert alpha["path"].endswith("site-packages/mkt_alpha/__init__.py")


def test_list_table(good_venv: KernelVenv) -> None:
    result = good_venv.cli("plugins", "list")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith("ID ")
    assert [line.split()[0] for line in lines[1:]] == ["alpha", "beta", "gamma", "hello"]


def test_check_reports_every_plugin_ok(good_venv: KernelVenv) -> None:
    result = good_venv.cli("plugins", "check")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    rows = [line.split() for line in result.stdout.splitlines()[1:5]]
    assert rows == [[pid, "ok", "Unloaded"] for pid in ("alpha", "beta", "gamma", "hello")]
    assert result.stdout.splitlines()[-1] == "4 ok, 0 failed, 0 skipped, 0 disabled"


def test_check_json(good_venv: KernelVenv) -> None:
    result = good_venv.cli("plugins", "check", "--json")
    assert result.returncode == 0
    rows = as_json(result)
    assert all(set(row) == CHECK_KEYS for row in rows)
    assert [(r["id"], r["status"], r["state"], r["error"]) for r in rows] == [
        (pid, "ok", "Unloaded", None) for pid in ("alpha", "beta", "gamma", "hello")
    ]


@pytest.mark.parametrize(
    ("argv", "output"),
    [
        (["run", "hello", "world"], "Hello, world!\n"),
        (["run", "alpha", "x y"], "alpha:x y\n"),
        (["run", "beta", "abc"], "beta:cba\n"),
        (["run", "gamma", "four"], "4\n"),
    ],
)
def test_run_prints_the_output(good_venv: KernelVenv, argv: list[str], output: str) -> None:
    result = good_venv.cli(*argv)
    assert (result.returncode, result.stdout, result.stderr) == (0, output, "")


def test_run_with_settings_from_the_config(good_venv: KernelVenv) -> None:
    config = good_venv.work / "hello.toml"
    config.write_text('[plugins.hello.settings]\ngreeting = "Bonjour"\n', encoding="utf-8")
    result = good_venv.cli("--config", str(config), "run", "hello", "Ada")
    assert (result.returncode, result.stdout) == (0, "Bonjour, Ada!\n")
    result = good_venv.cli("run", "hello", "Ada", env={"MOFA_CONFIG": str(config)})
    assert (result.returncode, result.stdout) == (0, "Bonjour, Ada!\n")


def test_info_json_is_one_object(good_venv: KernelVenv) -> None:
    result = good_venv.cli("plugins", "info", "beta", "--json")
    assert result.returncode == 0
    data = as_json(result)
    assert isinstance(data, dict)
    assert set(data) >= LIST_KEYS
    assert data["metadata"] == {
        "id": "beta",
        "name": "Beta",
        "version": "1.0.0",
        "description": "",
        "plugin_type": "Skill",
        "priority": "Normal",
        "dependencies": ["alpha"],
        "capabilities": [],
        "author": None,
    }
    assert data["config"] == {"settings": {}, "enabled": True, "auto_start": True}


def test_graph_edges_point_at_dependencies(good_venv: KernelVenv) -> None:
    result = good_venv.cli("plugins", "graph")
    assert result.returncode == 0
    assert result.stdout.splitlines() == [
        "graph TD",
        "    gamma",
        "    hello",
        "    beta --> alpha",
    ]
    dot = good_venv.cli("plugins", "graph", "--format", "dot")
    assert '    "beta" -> "alpha";' in dot.stdout.splitlines()


def test_python_dash_m_is_the_same_command(good_venv: KernelVenv) -> None:
    result = subprocess.run(
        [str(good_venv.python), "-m", "mofa_kernel", "run", "alpha", "m"],
        capture_output=True,
        text=True,
        cwd=good_venv.work,
        env=good_venv.environ(),
        check=False,
    )
    assert (result.returncode, result.stdout) == (0, "alpha:m\n")


# -- bad usage -----------------------------------------------------------------------------


def test_a_bad_config_file_exits_2_with_a_line_per_problem(good_venv: KernelVenv) -> None:
    config = good_venv.work / "bad.toml"
    config.write_text(
        "[kernel]\ntimeout = 'soon'\nbogus = 1\n[plugins.calculator]\nenabled = 'yes'\n",
        encoding="utf-8",
    )
    result = good_venv.cli("--config", str(config), "plugins", "check")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [
        f"mofa-kernel: {config}: kernel.timeout: expected a number, got a string",
        f"mofa-kernel: {config}: kernel.bogus: unknown key",
        f"mofa-kernel: {config}: plugins.calculator.enabled: expected a boolean, got a string",
    ]


def test_a_toml_syntax_error_exits_2(good_venv: KernelVenv) -> None:
    config = good_venv.work / "syntax.toml"
    config.write_text("[kernel]\nagent_id = \n", encoding="utf-8")
    result = good_venv.cli("--config", str(config), "plugins", "list")
    assert result.returncode == 2
    assert result.stderr.startswith(f"mofa-kernel: {config}:2:")
    assert len(result.stderr.splitlines()) == 1


def test_unknown_id_and_usage_errors_exit_2(good_venv: KernelVenv) -> None:
    result = good_venv.cli("run", "nobody", "x")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith("mofa-kernel: unknown plugin id 'nobody'")
    assert good_venv.cli("plugins", "info", "nobody").returncode == 2
    assert good_venv.cli("plugins", "frobnicate").returncode == 2


# -- broken plugins beside healthy ones ----------------------------------------------------


def test_check_isolates_every_failure(troubled_venv: KernelVenv) -> None:
    result = troubled_venv.cli("plugins", "check", "--json")
    assert result.returncode == 1
    rows = by_id(as_json(result))
    assert set(rows) == {
        "alpha", "beta", "gamma", "hello", "broken", "lacking", "needy", "ping", "pong",
        "gated", "twin", "future",
    }  # fmt: skip
    for pid in ("alpha", "beta", "gamma", "hello", "gated"):
        assert (rows[pid]["status"], rows[pid]["state"]) == ("ok", "Unloaded"), rows[pid]

    broken = rows["broken"]
    assert broken["status"] == "failed"
    assert broken["error"].endswith("RuntimeError: broken on purpose (mkt_broken/__init__.py:3)")
    assert broken["state"] == {"Error": broken["error"]}
    assert broken["distribution"] == "mkt-broken"

    lacking = rows["lacking"]
    assert lacking["status"] == "failed"
    assert "ModuleNotFoundError: No module named 'mkt_not_installed_anywhere'" in lacking["error"]

    assert rows["needy"]["status"] == "skipped"
    assert "missing dependency 'ghost'" in rows["needy"]["error"]
    for pid in ("ping", "pong"):
        assert rows[pid]["status"] == "skipped"
        assert "cycle" in rows[pid]["error"]
        assert "ping" in rows[pid]["error"]
        assert "pong" in rows[pid]["error"]

    twin = rows["twin"]
    assert twin["status"] == "failed"
    assert "mkt-twin-one" in twin["error"]
    assert "mkt-twin-two" in twin["error"]

    future = rows["future"]
    assert future["status"] == "failed"
    assert "requires mofa-kernel>=99" in future["error"]
    assert "future" not in troubled_venv.imported()


def test_check_table_sends_errors_to_stderr(troubled_venv: KernelVenv) -> None:
    result = troubled_venv.cli("plugins", "check")
    assert result.returncode == 1
    # ok: alpha beta gamma hello gated; failed: broken lacking twin future;
    # skipped: needy (missing dependency), ping and pong (a cycle).
    assert result.stdout.splitlines()[-1] == "5 ok, 4 failed, 3 skipped, 0 disabled"
    errors = result.stderr.splitlines()
    assert all(line.startswith("mofa-kernel: ") for line in errors)
    assert any(line.startswith("mofa-kernel: broken: failed: ") for line in errors)
    assert not any(line.startswith("mofa-kernel: alpha") for line in errors)


def test_run_still_works_beside_broken_plugins(troubled_venv: KernelVenv) -> None:
    result = troubled_venv.cli("run", "beta", "xyz")
    assert (result.returncode, result.stdout) == (0, "beta:zyx\n")


def test_run_imports_only_the_plugin_and_what_it_depends_on(troubled_venv: KernelVenv) -> None:
    troubled_venv.install("mkt-tripwire")
    try:
        # First with nothing cached about beta (imported to learn it needs alpha), then
        # with its metadata cached by the first run.
        troubled_venv.cli("cache", "clear")
        for _ in range(2):
            troubled_venv.clear_markers()
            result = troubled_venv.cli("run", "beta", "xyz")
            assert (result.returncode, result.stdout) == (0, "beta:zyx\n"), result.stderr
            assert "tripwire" not in result.stderr
            assert troubled_venv.imported() == set()  # neither tripwire nor gated
        # The tripwire works: running it imports it, and it fails.
        result = troubled_venv.cli("run", "tripwire", "x")
        assert result.returncode == 1
        assert "tripwire imported" in result.stderr
        assert troubled_venv.imported() == {"tripwire"}
    finally:
        troubled_venv.uninstall("mkt-tripwire")


@pytest.mark.parametrize(
    ("plugin_id", "error"),
    [
        ("broken", "RuntimeError: broken on purpose"),
        ("lacking", "No module named 'mkt_not_installed_anywhere'"),
        ("needy", "missing dependency 'ghost'"),
        ("ping", "cycle"),
        ("twin", "mkt-twin-two"),
        ("future", "requires mofa-kernel>=99"),
    ],
)
def test_run_a_failed_plugin_exits_1(troubled_venv: KernelVenv, plugin_id: str, error: str) -> None:
    result = troubled_venv.cli("run", plugin_id, "x")
    assert (result.returncode, result.stdout) == (1, "")
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(f"mofa-kernel: {plugin_id}: ")
    assert error in result.stderr


def test_a_disabled_plugin_is_never_imported(troubled_venv: KernelVenv) -> None:
    config = troubled_venv.work / "gated-off.toml"
    config.write_text("[plugins.gated]\nenabled = false\n", encoding="utf-8")
    result = troubled_venv.cli("--config", str(config), "plugins", "check", "--json")
    assert by_id(as_json(result))["gated"]["status"] == "disabled"
    assert by_id(as_json(result))["gated"]["reason"] == "disabled by plugins.gated.enabled"
    run = troubled_venv.cli("--config", str(config), "run", "gated", "x")
    assert run.returncode == 2
    assert run.stderr == (
        "mofa-kernel: plugin 'gated' is not enabled: disabled by plugins.gated.enabled\n"
    )
    listed = troubled_venv.cli("--config", str(config), "plugins", "list", "--json")
    gated = by_id(as_json(listed))["gated"]
    assert (gated["enabled"], gated["status"]) == (False, "disabled")
    assert "gated" not in troubled_venv.imported()
    # The marker works: the same plugin, enabled, is imported.
    assert troubled_venv.cli("run", "gated", "x").stdout == "gated:x\n"
    assert "gated" in troubled_venv.imported()


def test_deny_by_distribution_name(troubled_venv: KernelVenv) -> None:
    config = troubled_venv.work / "deny.toml"
    config.write_text('[kernel]\ndeny = ["MKT_Gated", "mkt-broken"]\n', encoding="utf-8")
    result = troubled_venv.cli("--config", str(config), "plugins", "check", "--json")
    rows = by_id(as_json(result))
    assert (rows["gated"]["status"], rows["broken"]["status"]) == ("disabled", "disabled")
    assert rows["gated"]["reason"] == "denied by kernel.deny"
    assert "gated" not in troubled_venv.imported()


def test_the_allow_list_variable(troubled_venv: KernelVenv) -> None:
    env = {"MOFA_PLUGINS": "alpha,beta"}
    result = troubled_venv.cli("plugins", "check", "--json", env=env)
    assert result.returncode == 0, result.stderr
    rows = by_id(as_json(result))
    assert (rows["alpha"]["status"], rows["beta"]["status"]) == ("ok", "ok")
    others = {pid: row for pid, row in rows.items() if pid not in ("alpha", "beta")}
    assert {row["status"] for row in others.values()} == {"disabled"}
    assert {row["reason"] for row in others.values()} == {"not in MOFA_PLUGINS"}
    assert troubled_venv.imported() == set()
    assert troubled_venv.cli("run", "alpha", "ok", env=env).stdout == "alpha:ok\n"
    refused = troubled_venv.cli("run", "gamma", "x", env=env)
    assert refused.returncode == 2
    assert refused.stderr == "mofa-kernel: plugin 'gamma' is not enabled: not in MOFA_PLUGINS\n"


def test_empty_allow_list_means_none(troubled_venv: KernelVenv) -> None:
    result = troubled_venv.cli("plugins", "check", "--json", env={"MOFA_PLUGINS": ""})
    assert result.returncode == 0
    assert {row["status"] for row in as_json(result)} == {"disabled"}
    assert troubled_venv.imported() == set()


def test_autoload_off(troubled_venv: KernelVenv) -> None:
    env = {"MOFA_DISABLE_PLUGIN_AUTOLOAD": "1"}
    result = troubled_venv.cli("plugins", "list", "--json", env=env)
    assert {row["status"] for row in as_json(result)} == {"disabled"}
    assert troubled_venv.cli("run", "alpha", "x", env=env).returncode == 2


def test_graph_beside_broken_plugins(troubled_venv: KernelVenv) -> None:
    result = troubled_venv.cli(
        "plugins", "graph", env={"MOFA_PLUGINS": "alpha,beta,needy,ping,pong"}
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "    beta --> alpha" in lines
    assert "    needy --> ghost" in lines
    assert "    ping --> pong" in lines
    assert "    pong --> ping" in lines
    full = troubled_venv.cli("plugins", "graph")
    assert full.returncode == 1
    assert any(line.startswith("mofa-kernel: broken: ") for line in full.stderr.splitlines())


def test_list_shows_the_troubled_without_importing(troubled_venv: KernelVenv) -> None:
    result = troubled_venv.cli("plugins", "list", "--json")
    assert result.returncode == 0
    rows = as_json(result)
    statuses = {(r["id"], r["distribution"]): r["status"] for r in rows}
    assert statuses[("twin", "mkt-twin-one")] == statuses[("twin", "mkt-twin-two")] == "failed"
    assert statuses[("future", "mkt-future")] == "failed"
    assert statuses[("broken", "mkt-broken")] == "discovered"
    assert troubled_venv.imported() == set()


# -- install, time out, uninstall ------------------------------------------------------------


def test_install_then_uninstall(good_venv: KernelVenv) -> None:
    good_venv.install("mkt-sleepy")
    try:
        listed = good_venv.cli("plugins", "list", "--json")
        assert "sleepy" in by_id(as_json(listed))
        config = good_venv.work / "sleepy.toml"
        config.write_text("[plugins.sleepy]\ntimeout = 0.5\n", encoding="utf-8")
        result = good_venv.cli("--config", str(config), "plugins", "check", "--json")
        assert result.returncode == 1
        sleepy = by_id(as_json(result))["sleepy"]
        assert sleepy["status"] == "failed"
        assert "start timed out after 0.5s" in sleepy["error"]
    finally:
        good_venv.uninstall("mkt-sleepy")
    listed = good_venv.cli("plugins", "list", "--json")
    assert [row["id"] for row in as_json(listed)] == ["alpha", "beta", "gamma", "hello"]
    assert good_venv.cli("run", "sleepy", "x").returncode == 2
    assert good_venv.cli("plugins", "check").returncode == 0


def test_the_sets_are_disjoint() -> None:
    assert not set(GOOD) & set(TROUBLED)
