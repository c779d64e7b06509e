"""Typed plugin settings (``settings_type`` -> ``ctx.settings``) and did-you-mean everywhere.

In-process: the structuring itself, the manager failing only the plugin with
bad settings, the command line's warnings for unknown ``[plugins.ID]`` tables
and its suggestions for unknown ids and keys.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from _fakesite import FakeSite, fake_site
from mofa_kernel import (
    AgentPlugin,
    PluginConfig,
    PluginConfigError,
    PluginLoadError,
    PluginManager,
    PluginMetadata,
    PluginState,
    PluginType,
)
from mofa_kernel._cli import main
from mofa_kernel._config import load_settings
from mofa_kernel._settings import did_you_mean, structure_plugin_settings


@attrs.frozen
class Limits:
    low: int = 0
    high: float = 10.0


@attrs.frozen
class CounterSettings:
    min_length: int = 1
    label: str = "words"
    strict: bool = False
    stop_words: tuple[str, ...] = ()
    limits: Limits = Limits()


class Counter(AgentPlugin):
    metadata = PluginMetadata("counter", "Counter", PluginType.TOOL)
    settings_type = CounterSettings

    def __init__(self) -> None:
        self.seen: Any = None
        self.started = False

    async def load(self, ctx: Any) -> None:
        await super().load(ctx)
        self.seen = ctx.settings

    async def start(self) -> None:
        self.started = True

    async def execute(self, input: str) -> str:
        assert self.context is not None
        settings: CounterSettings = self.context.settings
        return str(sum(len(word) >= settings.min_length for word in input.split()))


class Plain(AgentPlugin):
    metadata = PluginMetadata("plain", "Plain", PluginType.TOOL)

    async def execute(self, input: str) -> str:
        assert self.context is not None
        return repr(self.context.settings)


def problems(settings: dict[str, Any], plugin_id: str = "counter") -> list[str]:
    with pytest.raises(PluginConfigError) as caught:
        structure_plugin_settings(plugin_id, CounterSettings, settings)
    assert caught.value.plugin_id == plugin_id
    return str(caught.value).splitlines()


# -- structuring ------------------------------------------------------------------------------


def test_settings_are_structured_into_the_class() -> None:
    value = structure_plugin_settings(
        "counter",
        CounterSettings,
        {"min_length": 3, "stop_words": ["a", "the"], "limits": {"high": 2}},
    )
    assert value == CounterSettings(min_length=3, stop_words=("a", "the"), limits=Limits(0, 2.0))


def test_a_misspelt_key_names_its_path_and_the_close_match() -> None:
    assert problems({"min_lenght": 3}) == [
        "plugins.counter.settings.min_lenght: unknown key; did you mean 'min_length'?"
    ]


def test_an_unknown_key_with_nothing_close_gets_no_suggestion() -> None:
    assert problems({"colour": "red"}) == ["plugins.counter.settings.colour: unknown key"]


def test_every_problem_is_one_line_with_its_path() -> None:
    lines = problems(
        {
            "min_length": "3",
            "strict": 1,
            "stop_words": ["a", 2],
            "limits": {"hihg": 1, "low": 1.5},
        },
        plugin_id="word counter",
    )
    base = 'plugins."word counter".settings'
    assert sorted(lines) == sorted(
        [
            f"{base}.min_length: expected an integer, got a string",
            f"{base}.strict: expected a boolean, got an integer",
            f"{base}.stop_words[1]: expected a string, got an integer",
            f"{base}.limits.hihg: unknown key; did you mean 'high'?",
            f"{base}.limits.low: expected an integer, got a float",
        ]
    )


def test_a_required_setting_that_is_missing() -> None:
    @attrs.frozen
    class Needs:
        token: str

    with pytest.raises(PluginConfigError, match=r"^plugins\.x\.settings\.token: missing"):
        structure_plugin_settings("x", Needs, {})


def test_settings_type_must_be_an_attrs_class() -> None:
    with pytest.raises(PluginConfigError, match="settings_type must be an attrs class"):
        structure_plugin_settings("x", dict, {})


def test_without_settings_type_the_dict_is_given_as_it_is() -> None:
    settings = {"anything": [1, 2]}
    assert structure_plugin_settings("x", None, settings) is settings


def test_did_you_mean() -> None:
    assert did_you_mean("calculater", ["calculator", "memory"]) == "; did you mean 'calculator'?"
    assert did_you_mean("zzz", ["calculator"]) == ""


# -- the manager ------------------------------------------------------------------------------


async def test_ctx_settings_is_filled_before_load() -> None:
    counter = Counter()
    async with PluginManager() as manager:
        manager.register(counter, config=PluginConfig(settings={"min_length": 3}))
        await manager.start_all()
        assert counter.seen == CounterSettings(min_length=3)
        assert await manager.execute("counter", "a bb ccc dddd") == "2"


async def test_bad_settings_fail_that_plugin_only_and_nothing_of_it_runs() -> None:
    counter = Counter()
    async with PluginManager() as manager:
        manager.register(counter, config=PluginConfig(settings={"min_lenght": 3}))
        manager.register(Plain(), config=PluginConfig(settings={"k": 1}))
        report = await manager.start_all()
        assert manager.state("plain") == PluginState.RUNNING
        state = manager.state("counter")
        assert state.is_error
        assert state.message == (
            "load failed: plugins.counter.settings.min_lenght: unknown key; "
            "did you mean 'min_length'?"
        )
        assert counter.seen is None  # load never ran
        assert not counter.started
        assert report.outcomes["counter"].status == "failed"
        assert await manager.execute("plain", "") == "{'k': 1}"
    async with PluginManager() as manager:
        manager.register(Counter(), config=PluginConfig(settings={"strict": "yes"}))
        with pytest.raises(PluginLoadError, match=r"strict: expected a boolean, got a string"):
            await manager.load("counter")


# -- the command line -------------------------------------------------------------------------

COUNTER = """\
import attrs
from mofa_kernel import AgentPlugin, PluginMetadata, PluginType


@attrs.frozen
class Settings:
    min_length: int = 1


class Counter(AgentPlugin):
    metadata = PluginMetadata("word-count", "Word count", PluginType.TOOL)
    settings_type = Settings

    async def execute(self, input):
        n = self.context.settings.min_length
        return str(sum(len(word) >= n for word in input.split()))
"""


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSite]:
    monkeypatch.delenv("MOFA_CONFIG", raising=False)
    monkeypatch.delenv("MOFA_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.setenv("MOFA_PLUGINS", "word-count")
    monkeypatch.setenv("MOFA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    for fake in fake_site(tmp_path, monkeypatch):
        fake.add("st-counter", plugins={"word-count": "st_counter:Counter"},
                 files={"st_counter.py": COUNTER})  # fmt: skip
        yield fake


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_run_uses_the_typed_settings(site: FakeSite, capsys: pytest.CaptureFixture[str]) -> None:
    Path("mofa.toml").write_text("[plugins.word-count.settings]\nmin_length = 3\n")
    assert cli(capsys, "run", "word-count", "a bb ccc dddd") == (0, "2\n", "")


def test_run_with_a_misspelt_setting(site: FakeSite, capsys: pytest.CaptureFixture[str]) -> None:
    Path("mofa.toml").write_text("[plugins.word-count.settings]\nmin_lenght = 3\n")
    code, out, err = cli(capsys, "run", "word-count", "a bb")
    assert (code, out) == (1, "")
    assert err == (
        "mofa-kernel: word-count: load failed: plugins.word-count.settings.min_lenght: "
        "unknown key; did you mean 'min_length'?\n"
    )


@pytest.mark.parametrize(
    "command", [["plugins", "list"], ["plugins", "check"], ["run", "word-count", "a"]]
)
def test_a_table_for_no_installed_plugin_is_a_warning(
    site: FakeSite, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    Path("mofa.toml").write_text("[plugins.word-countr.settings]\nmin_length = 3\n")
    for _ in range(2):  # the second `plugins list` is replayed from the cache
        code, _out, err = cli(capsys, *command)
        assert code == 0
        assert (
            "mofa-kernel: warning: plugins.word-countr: no plugin with this id is installed; "
            "did you mean 'word-count'?"
        ) in err.splitlines()


def test_an_unknown_id_gets_a_suggestion(
    site: FakeSite, capsys: pytest.CaptureFixture[str]
) -> None:
    for command in (["run", "word-cuont", "x"], ["plugins", "info", "word-cuont"]):
        code, out, err = cli(capsys, *command)
        assert (code, out) == (2, "")
        assert err == (
            "mofa-kernel: unknown plugin id 'word-cuont'; did you mean 'word-count'? "
            "(known: word-count)\n"
        )


def test_an_unknown_top_level_key_gets_a_suggestion(tmp_path: Path) -> None:
    path = tmp_path / "typo.toml"
    path.write_text("[kernal]\n[hot_reload]\nstratgy = 'manual'\n[plugins.x]\nenabeld = true\n")
    with pytest.raises(PluginConfigError) as caught:
        load_settings(path)
    assert str(caught.value).splitlines() == [
        f"{path}: hot_reload.stratgy: unknown key; did you mean 'strategy'?",
        f"{path}: plugins.x.enabeld: unknown key; did you mean 'enabled'?",
        f"{path}: kernal: unknown key; did you mean 'kernel'?",
    ]
