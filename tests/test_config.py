"""The TOML configuration: strict structuring, one line per problem, and plugin selection."""

# ruff: noqa: E501 - the table of bad inputs reads best as one case per line

from __future__ import annotations

from pathlib import Path

import pytest

from mofa_kernel import HotReloadConfig, PluginConfig, PluginConfigError, ReloadStrategy
from mofa_kernel._config import (
    HotReloadSection,
    KernelSection,
    KernelSettings,
    PluginSection,
    Selection,
    load_settings,
    plugin_rule,
    structure_settings,
)
from mofa_kernel._discovery import PluginSource

FULL = """\
[kernel]
agent_id = "agent-7"
autoload = false
allow = ["calculator", "mofa-sample-memory"]
deny = ["llm"]
timeout = 12

[hot_reload]
strategy = "manual"
debounce = 0.25
preserve_state = false
auto_rollback = false
max_reload_attempts = 5
reload_cooldown = 0.5

[plugins.calculator]
enabled = false
auto_start = false
timeout = 2.5

[plugins.calculator.settings]
precision = 12
modes = ["deg", "rad"]
nested = { on = true, ratio = 0.5 }
"""


def problems(data: dict[str, object]) -> list[str]:
    with pytest.raises(PluginConfigError) as info:
        structure_settings(data)
    return str(info.value).splitlines()


def write(tmp_path: Path, text: str, name: str = "mofa.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_match_the_contract() -> None:
    settings = KernelSettings()
    assert settings.kernel == KernelSection("default", True, (), (), 30.0)
    assert settings.hot_reload.to_config() == HotReloadConfig()
    assert settings.plugins == {}
    assert settings.path is None
    assert structure_settings({}) == KernelSettings()


def test_a_full_file(tmp_path: Path) -> None:
    path = write(tmp_path, FULL, "full.toml")
    settings = load_settings(path)
    assert settings.path == path
    assert settings.kernel == KernelSection(
        agent_id="agent-7",
        autoload=False,
        allow=("calculator", "mofa-sample-memory"),
        deny=("llm",),
        timeout=12.0,
    )
    assert isinstance(settings.kernel.timeout, float)
    assert settings.hot_reload == HotReloadSection(
        strategy="manual",
        debounce=0.25,
        preserve_state=False,
        auto_rollback=False,
        max_reload_attempts=5,
        reload_cooldown=0.5,
    )
    calculator = settings.plugins["calculator"]
    assert calculator.to_plugin_config() == PluginConfig(
        {"precision": 12, "modes": ["deg", "rad"], "nested": {"on": True, "ratio": 0.5}},
        enabled=False,
        auto_start=False,
    )
    assert settings.plugin_timeout("calculator") == 2.5
    assert settings.plugin_timeout("other") == 12.0
    assert settings.plugin_config("other") == PluginConfig()
    assert settings.plugin_section("other") == PluginSection()


def test_plugin_config_is_a_fresh_copy() -> None:
    section = PluginSection(settings={"a": 1})
    config = section.to_plugin_config()
    config.set("a", 2)
    assert section.settings == {"a": 1}


@pytest.mark.parametrize(
    ("section", "strategy"),
    [
        (HotReloadSection(strategy="immediate"), ReloadStrategy.IMMEDIATE),
        (HotReloadSection(strategy="manual"), ReloadStrategy.MANUAL),
        (HotReloadSection(strategy="on_idle"), ReloadStrategy.ON_IDLE),
        (HotReloadSection(strategy="debounced", debounce=0.2), ReloadStrategy.debounced(0.2)),
        (HotReloadSection(), ReloadStrategy.debounced(1.0)),
    ],
)
def test_hot_reload_strategies(section: HotReloadSection, strategy: ReloadStrategy) -> None:
    config = section.to_config()
    assert config.strategy == strategy
    assert (config.preserve_state, config.auto_rollback) == (True, True)
    assert (config.max_reload_attempts, config.reload_cooldown) == (3, 5.0)


def test_hot_reload_config_carries_every_field() -> None:
    settings = structure_settings(
        {"hot_reload": {"max_reload_attempts": 7, "reload_cooldown": 0, "auto_rollback": False}}
    )
    assert settings.hot_reload_config() == HotReloadConfig(
        max_reload_attempts=7, reload_cooldown=0.0, auto_rollback=False
    )


STRATEGIES = '"immediate", "debounced", "manual", "on_idle"'


@pytest.mark.parametrize(
    ("data", "path", "message"),
    [
        ({"plugins": {"calculator": {"enabled": "yes"}}}, "plugins.calculator.enabled", "expected a boolean, got a string"),
        ({"kernel": {"bogus": 1}}, "kernel.bogus", "unknown key"),
        ({"kernel": {"agent_id": 7}}, "kernel.agent_id", "expected a string, got an integer"),
        ({"kernel": {"autoload": 1}}, "kernel.autoload", "expected a boolean, got an integer"),
        ({"kernel": {"timeout": "fast"}}, "kernel.timeout", "expected a number, got a string"),
        ({"kernel": {"timeout": 0}}, "kernel.timeout", "expected a number of seconds > 0, got 0"),
        ({"kernel": {"timeout": True}}, "kernel.timeout", "expected a number, got a boolean"),
        ({"kernel": {"timeout": float("inf")}}, "kernel.timeout", "expected a finite number"),
        ({"kernel": {"allow": "calc"}}, "kernel.allow", "expected an array of strings, got a string"),
        ({"kernel": {"deny": ["a", 1]}}, "kernel.deny[1]", "expected a string, got an integer"),
        ({"kernel": 3}, "kernel", "expected a table, got an integer"),
        ({"hot_reload": {"strategy": "fast"}}, "hot_reload.strategy", f'expected one of {STRATEGIES}, got "fast"'),
        ({"hot_reload": {"strategy": 1}}, "hot_reload.strategy", f"expected one of {STRATEGIES}, got an integer"),
        ({"hot_reload": {"debounce": -1}}, "hot_reload.debounce", "expected a number of seconds >= 0, got -1"),
        ({"hot_reload": {"max_reload_attempts": 1.5}}, "hot_reload.max_reload_attempts", "expected an integer, got a float"),
        ({"hot_reload": {"max_reload_attempts": -1}}, "hot_reload.max_reload_attempts", "expected an integer >= 0, got -1"),
        ({"plugins": []}, "plugins", "expected a table, got an array"),
        ({"plugins": {"calc": 1}}, "plugins.calc", "expected a table, got an integer"),
        ({"plugins": {"calc": {"timeout": -2}}}, "plugins.calc.timeout", "expected a number of seconds > 0, got -2"),
        ({"plugins": {"calc": {"settings": 5}}}, "plugins.calc.settings", "expected a table, got an integer"),
        ({"plugins": {"my.calc": {"x": 1}}}, 'plugins."my.calc".x', "unknown key"),
        ({"top": 1}, "top", "unknown key"),
    ],
)  # fmt: skip
def test_each_problem_is_one_line_with_its_path(
    data: dict[str, object], path: str, message: str
) -> None:
    assert problems(data) == [f"{path}: {message}"]


def test_every_problem_is_reported_at_once() -> None:
    lines = problems(
        {
            "kernel": {"bogus": 1, "timeout": "x"},
            "hot_reload": {"strategy": "fast"},
            "plugins": {"a": {"enabled": "no"}, "b": {"auto_start": 0, "extra": True}},
            "top": 1,
        }
    )
    assert sorted(lines) == sorted(
        [
            "kernel.timeout: expected a number, got a string",
            "kernel.bogus: unknown key",
            'hot_reload.strategy: expected one of "immediate", "debounced", "manual", '
            '"on_idle", got "fast"',
            "plugins.a.enabled: expected a boolean, got a string",
            "plugins.b.auto_start: expected a boolean, got an integer",
            "plugins.b.extra: unknown key",
            "top: unknown key",
        ]
    )


def test_settings_hold_json_data_only(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "[plugins.calc.settings]\nwhen = 1979-05-27\nlist = [1, 07:32:00]\nok = 1\n",
    )
    with pytest.raises(PluginConfigError) as info:
        load_settings(path)
    assert str(info.value).splitlines() == [
        f"{path}: plugins.calc.settings.when: a date/time is not JSON data",
        f"{path}: plugins.calc.settings.list[1]: a date/time is not JSON data",
    ]


def test_settings_accept_any_keys() -> None:
    settings = structure_settings({"plugins": {"c": {"settings": {"any key": {"deep": [1, "x"]}}}}})
    assert settings.plugins["c"].settings == {"any key": {"deep": [1, "x"]}}


def test_a_bad_file_names_itself_on_each_line(tmp_path: Path) -> None:
    path = write(tmp_path, "[kernel]\nbogus = 1\n[plugins.calculator]\nenabled = 'yes'\n")
    with pytest.raises(PluginConfigError) as info:
        load_settings(path)
    assert str(info.value).splitlines() == [
        f"{path}: kernel.bogus: unknown key",
        f"{path}: plugins.calculator.enabled: expected a boolean, got a string",
    ]
    assert info.value.__cause__ is None


def test_a_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "[kernel]\ntimeout = 1\n[kernel]\n")
    with pytest.raises(PluginConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert message.startswith(f"{path}:3:")
    assert "invalid TOML" in message
    assert "\n" not in message


def test_a_syntax_error_at_the_end(tmp_path: Path) -> None:
    path = write(tmp_path, "a = ")
    with pytest.raises(PluginConfigError, match="invalid TOML") as info:
        load_settings(path)
    assert str(info.value).startswith(f"{path}: ")


def test_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('agent = "\xe9"'.encode("latin-1"))
    with pytest.raises(PluginConfigError, match="not UTF-8"):
        load_settings(path)


def test_a_missing_given_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(PluginConfigError, match="configuration file not found") as info:
        load_settings(tmp_path / "absent.toml")
    assert str(tmp_path / "absent.toml") in str(info.value)
    with pytest.raises(PluginConfigError, match="configuration file not found"):
        load_settings(environ={"MOFA_CONFIG": str(tmp_path / "absent.toml")})


def test_a_folder_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(PluginConfigError, match="cannot read configuration file"):
        load_settings(tmp_path)


def test_where_the_file_comes_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_settings(environ={}) == KernelSettings()
    write(tmp_path, '[kernel]\nagent_id = "from-cwd"\n')
    assert load_settings(environ={}).kernel.agent_id == "from-cwd"
    env_file = write(tmp_path, '[kernel]\nagent_id = "from-env"\n', "env.toml")
    assert load_settings(environ={"MOFA_CONFIG": str(env_file)}).kernel.agent_id == "from-env"
    assert load_settings(environ={"MOFA_CONFIG": ""}).kernel.agent_id == "from-cwd"
    given = write(tmp_path, '[kernel]\nagent_id = "given"\n', "given.toml")
    assert load_settings(given, environ={"MOFA_CONFIG": str(env_file)}).kernel.agent_id == "given"


def test_environ_defaults_to_os_environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = write(tmp_path, '[kernel]\nagent_id = "os-env"\n', "env.toml")
    monkeypatch.setenv("MOFA_CONFIG", str(env_file))
    assert load_settings().kernel.agent_id == "os-env"


# -- selection ---------------------------------------------------------------------------

ALPHA = PluginSource("alpha", "alpha:Plugin", "Mofa_Alpha.Dist", "1.0")
BETA = PluginSource("beta", "beta:Plugin", "beta-dist", "1.0")


def select(
    settings: dict[str, object] | None = None, environ: dict[str, str] | None = None
) -> Selection:
    return Selection.from_settings(structure_settings(settings or {}), environ or {})


def test_by_default_everything_loads() -> None:
    assert select().exclusion_reason(ALPHA) is None


@pytest.mark.parametrize("value", ["1", "true", "YES", "on"])
def test_autoload_off_by_environment(value: str) -> None:
    selection = select(environ={"MOFA_DISABLE_PLUGIN_AUTOLOAD": value})
    assert selection.exclusion_reason(ALPHA) == (
        "autoload disabled by MOFA_DISABLE_PLUGIN_AUTOLOAD"
    )


@pytest.mark.parametrize("value", ["", "0", "false", "No", "off"])
def test_autoload_flag_values_that_mean_no(value: str) -> None:
    assert select(environ={"MOFA_DISABLE_PLUGIN_AUTOLOAD": value}).exclusion_reason(ALPHA) is None


def test_autoload_off_by_configuration() -> None:
    selection = select({"kernel": {"autoload": False}})
    assert selection.exclusion_reason(BETA) == "autoload disabled by kernel.autoload"


def test_mofa_plugins_restricts_to_the_ids_it_names() -> None:
    selection = select(environ={"MOFA_PLUGINS": " alpha , ,gamma"})
    assert selection.only == frozenset({"alpha", "gamma"})
    assert selection.exclusion_reason(ALPHA) is None
    assert selection.exclusion_reason(BETA) == "not in MOFA_PLUGINS"


def test_mofa_plugins_set_but_empty_means_none() -> None:
    selection = select(environ={"MOFA_PLUGINS": ""})
    assert selection.exclusion_reason(ALPHA) == "not in MOFA_PLUGINS"
    assert selection.exclusion_reason(BETA) == "not in MOFA_PLUGINS"


def test_deny_matches_ids_and_normalised_distribution_names() -> None:
    by_id = select({"kernel": {"deny": ["beta"]}})
    assert by_id.exclusion_reason(BETA) == "denied by kernel.deny"
    assert by_id.exclusion_reason(ALPHA) is None
    by_dist = select({"kernel": {"deny": ["mofa-alpha-dist"]}})
    assert by_dist.exclusion_reason(ALPHA) == "denied by kernel.deny"


def test_allow_matches_ids_and_distribution_names() -> None:
    selection = select({"kernel": {"allow": ["MOFA.alpha_dist"]}})
    assert selection.exclusion_reason(ALPHA) is None
    assert selection.exclusion_reason(BETA) == "not in kernel.allow"
    assert select({"kernel": {"allow": ["beta"]}}).exclusion_reason(BETA) is None


def test_deny_wins_over_allow() -> None:
    selection = select({"kernel": {"allow": ["alpha"], "deny": ["alpha"]}})
    assert selection.exclusion_reason(ALPHA) == "denied by kernel.deny"


def test_a_plugin_disabled_in_its_table() -> None:
    selection = select({"plugins": {"alpha": {"enabled": False}, "beta": {"enabled": True}}})
    assert selection.exclusion_reason(ALPHA) == "disabled by plugins.alpha.enabled"
    assert selection.exclusion_reason(BETA) is None
    dotted = PluginSource("my.plugin", "m:P", "d")
    reason = select({"plugins": {"my.plugin": {"enabled": False}}}).exclusion_reason(dotted)
    assert reason == 'disabled by plugins."my.plugin".enabled'


def test_a_source_without_distribution_matches_by_id_only() -> None:
    loose = PluginSource("loose", "l:P")
    assert select({"kernel": {"deny": ["loose"]}}).exclusion_reason(loose) == (
        "denied by kernel.deny"
    )
    assert select({"kernel": {"allow": ["x"]}}).exclusion_reason(loose) == "not in kernel.allow"


def test_selection_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOFA_PLUGINS", "beta")
    selection = Selection.from_settings(KernelSettings())
    assert selection.exclusion_reason(ALPHA) == "not in MOFA_PLUGINS"


# -- the trust lock and the loop watch --------------------------------------------------------


def test_trust_and_block_limit_keys(tmp_path: Path) -> None:
    path = tmp_path / "mofa.toml"
    path.write_text(
        '[kernel]\ntrust = "refuse"\ntrust_file = "locks/trust.json"\nblock_limit = 0\n',
        encoding="utf-8",
    )
    settings = load_settings(path)
    assert settings.kernel.trust == "refuse"
    assert settings.trust_lock_path() == tmp_path / "locks" / "trust.json"
    assert settings.kernel.block_limit_or_none is None
    assert KernelSettings().kernel.trust == "off"
    assert KernelSettings().kernel.block_limit_or_none == 1.0


def test_a_bad_trust_mode_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "mofa.toml"
    path.write_text('[kernel]\ntrust = "maybe"\n', encoding="utf-8")
    with pytest.raises(PluginConfigError) as caught:
        load_settings(path)
    [line] = str(caught.value).splitlines()
    assert line.endswith('kernel.trust: expected one of "off", "warn", "refuse", got "maybe"')


def test_the_trust_lock_asked_for_must_exist(tmp_path: Path) -> None:
    path = tmp_path / "mofa.toml"
    path.write_text('[kernel]\ntrust = "warn"\n', encoding="utf-8")
    settings = load_settings(path)
    with pytest.raises(PluginConfigError, match="trust lock not found"):
        plugin_rule(settings, {})
    (tmp_path / "mofa-trust.json").write_text('{"version": 1, "approved": {}}', encoding="utf-8")
    rule = plugin_rule(settings, {"MOFA_PLUGINS": "other"})
    source = PluginSource("calc", "calc:Plugin", "calc-dist", "1.0")
    assert rule(source) == "not in MOFA_PLUGINS"  # the selection is asked first
