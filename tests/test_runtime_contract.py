"""The five places where the first runtime slipped from the contract, seen as a user sees them.

1. ``plugins check --json`` gives a plugin whose ``start`` failed its error state.
2. ``run X`` names the dependency that failed, not X.
3. A cycle or a missing dependency emits a ``PluginError`` per plugin it keeps down.
4. ``load``/``start`` by hand refuse a plugin whose dependency is missing or not running.
5. Uninstalling a dependency while hot reload watches takes its dependents down, with a
   ``PluginError`` naming it, and brings them back when it returns.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from _fakesite import FakeSite, fake_site
from _hotcode import Events, is_
from mofa_kernel import (
    AgentPlugin,
    DependencyCycleError,
    DependencyError,
    HotReloadConfig,
    InvalidStateError,
    MissingDependencyError,
    PluginEvent,
    PluginManager,
    PluginMetadata,
    PluginState,
    PluginType,
    ReloadEvent,
    ReloadStrategy,
)
from mofa_kernel._cli import main

BAD_START = """\
from mofa_kernel import AgentPlugin, PluginMetadata, PluginType

class Plugin(AgentPlugin):
    metadata = PluginMetadata("bad-start", "Bad start", PluginType.TOOL)

    async def start(self):
        raise ConnectionError("the service is down")

    async def execute(self, input):
        return input
"""

NEEDS_BAD = """\
from mofa_kernel import AgentPlugin, PluginMetadata, PluginType

class Plugin(AgentPlugin):
    metadata = PluginMetadata("needs-bad", "Needs bad", PluginType.TOOL,
                              dependencies=("bad-start",))

    async def execute(self, input):
        return input
"""


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSite]:
    monkeypatch.delenv("MOFA_CONFIG", raising=False)
    monkeypatch.delenv("MOFA_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.chdir(tmp_path)
    yield from fake_site(tmp_path, monkeypatch)


@pytest.fixture
def bad_start(site: FakeSite, monkeypatch: pytest.MonkeyPatch) -> FakeSite:
    monkeypatch.setenv("MOFA_PLUGINS", "bad-start,needs-bad")
    site.add("rt-bad-start", plugins={"bad-start": "rt_bad_start:Plugin"},
             files={"rt_bad_start.py": BAD_START})  # fmt: skip
    site.add("rt-needs-bad", plugins={"needs-bad": "rt_needs_bad:Plugin"},
             files={"rt_needs_bad.py": NEEDS_BAD})  # fmt: skip
    return site


def test_check_json_gives_a_failed_start_its_error_state(
    bad_start: FakeSite, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["plugins", "check", "--json"])
    rows = {row["id"]: row for row in json.loads(capsys.readouterr().out)}
    assert code == 1
    bad = rows["bad-start"]
    assert bad["status"] == "failed"
    assert bad["state"] == {"Error": "start failed: ConnectionError: the service is down "
                                     "(rt_bad_start.py:7)"}  # fmt: skip
    assert rows["needs-bad"]["status"] == "skipped"
    assert rows["needs-bad"]["state"] == "Unloaded"


def test_run_names_the_dependency_that_failed(
    bad_start: FakeSite, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", "needs-bad", "x"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.strip() == "mofa-kernel: needs-bad: dependency bad-start failed"


class _Plugin(AgentPlugin):
    def __init__(self, pid: str, *deps: str) -> None:
        self.metadata = PluginMetadata(pid, pid, PluginType.TOOL, dependencies=deps)

    async def execute(self, input: str) -> str:
        return input


def _errors(events: list[object]) -> dict[str, str]:
    return {e.plugin_id: e.error for e in events if isinstance(e, PluginEvent.PluginError)}


async def test_a_cycle_and_a_missing_dependency_emit_plugin_errors() -> None:
    events: list[object] = []
    async with PluginManager() as manager:
        manager.add_listener(events.append)
        for plugin in (
            _Plugin("a", "b"),
            _Plugin("b", "a"),
            _Plugin("needy", "ghost"),
            _Plugin("above", "needy"),
            _Plugin("fine"),
        ):
            manager.register(plugin)
        report = await manager.start_all()
        errors = _errors(events)
        assert errors == {
            "a": "dependency cycle a -> b -> a",
            "b": "dependency cycle a -> b -> a",
            "needy": "missing dependency 'ghost' (needy -> ghost)",
            "above": "missing dependency 'ghost' (above -> needy -> ghost)",
        }
        assert sorted(report.skipped) == ["a", "above", "b", "needy"]
        assert manager.record("needy").reason == errors["needy"]
        assert manager.state("fine") == PluginState.RUNNING
        assert manager.state("needy") == PluginState.UNLOADED


async def test_by_hand_a_missing_dependency_or_a_cycle_refuses_load() -> None:
    async with PluginManager() as manager:
        manager.register(_Plugin("needy", "ghost"))
        manager.register(_Plugin("a", "b"))
        manager.register(_Plugin("b", "a"))
        with pytest.raises(MissingDependencyError) as missing:
            await manager.load("needy")
        assert (missing.value.plugin_id, missing.value.chain) == ("needy", ("needy", "ghost"))
        with pytest.raises(DependencyCycleError) as cycle:
            await manager.load("a")
        assert cycle.value.chain == ("a", "b", "a")
        assert manager.state("needy") == manager.state("a") == PluginState.UNLOADED


async def test_by_hand_start_waits_for_running_dependencies() -> None:
    events: list[object] = []
    async with PluginManager() as manager:
        manager.register(_Plugin("base"))
        manager.register(_Plugin("top", "base"))
        manager.add_listener(events.append)
        await manager.load("top")
        with pytest.raises(DependencyError) as refused:
            await manager.start("top")
        assert type(refused.value) is DependencyError
        assert refused.value.plugin_id == "top"
        assert refused.value.chain == ("top", "base")
        assert str(refused.value) == "dependency 'base' of 'top' is Unloaded, not Running"
        assert manager.state("top") == PluginState.LOADED  # nothing changed
        await manager.load("base")
        await manager.start("base")
        await manager.start("top")
        assert manager.state("top") == PluginState.RUNNING
        with pytest.raises(InvalidStateError):
            await manager.start("top")


DEP_SOURCE = """\
from mofa_kernel import AgentPlugin, PluginMetadata, PluginType

class Plugin(AgentPlugin):
    metadata = PluginMetadata("base", "Base", PluginType.TOOL)

    async def execute(self, input):
        return "base:" + input
"""


async def test_uninstalling_a_dependency_takes_its_dependents_down_and_back(
    site: FakeSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOFA_PLUGINS", "base")

    def install() -> Path:
        return site.add("rt-base", plugins={"base": "rt_base_pkg:Plugin"},
                        files={"rt_base_pkg/__init__.py": DEP_SOURCE})  # fmt: skip

    dist_info = install()
    immediate = HotReloadConfig(strategy=ReloadStrategy.IMMEDIATE)
    async with PluginManager(hot_reload=immediate) as manager:
        manager.discover()
        manager.register(_Plugin("top", "base"))
        report = await manager.start_all()
        assert report.ok, report.errors()
        events = Events(manager)
        async with manager.hot_reloading(watch_installs=True):
            shutil.rmtree(dist_info)
            shutil.rmtree(site.root / "rt_base_pkg")
            seen = await events.until(is_(ReloadEvent.PluginRemoved))
            assert manager.state("top") == PluginState.LOADED
            assert _errors(seen)["top"] == "stopped because dependency base was uninstalled"
            down = [e for e in seen if is_(PluginEvent.StateChanged, "top")(e)]
            assert [(e.old_state, e.new_state) for e in down] == [  # type: ignore[attr-defined]
                (PluginState.RUNNING, PluginState.LOADED)
            ]
            install()
            await events.until(is_(PluginEvent.StateChanged, "top", new_state=PluginState.RUNNING))
            assert await manager.execute("top", "back") == "back"
            assert await manager.execute("base", "again") == "base:again"
