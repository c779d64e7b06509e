"""The pytest plugin for plugin authors (mofa_kernel.testing): fixtures, isolation, conformance.

The fixtures are exercised the way authors meet them: in test files that
pytest's ``pytester`` runs, with the plugin loaded from its ``pytest11``
entry point. The conformance check runs here directly, against plugins
broken on purpose and against every sample plugin.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import types
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

from mofa_kernel import (
    AgentPlugin,
    HotReloadable,
    PluginError,
    PluginExecutionError,
    PluginMetadata,
    PluginState,
    PluginType,
    hookimpl,
)
from mofa_kernel.testing import (
    ConformanceReport,
    EntryPointSandbox,
    assert_conforms,
    check_plugin,
    run_lifecycle,
)

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SAMPLES = ROOT / "sample_plugins"
FIXTURES = (
    "mofa_isolation",
    "mofa_manager_factory",
    "mofa_manager",
    "mofa_register",
    "mofa_entry_points",
    "mofa_lifecycle",
)
INI = """\
[pytest]
asyncio_mode = {mode}
asyncio_default_fixture_loop_scope = function
filterwarnings = error
"""
ALL_CHECKS = {"metadata", "transitions", "health", "stats"}


# -- plugins for the conformance check, good and broken on purpose ---------------------------


def meta(plugin_id: str, *dependencies: str) -> PluginMetadata:
    return PluginMetadata(plugin_id, plugin_id.title(), PluginType.TOOL, dependencies=dependencies)


class Good(AgentPlugin):
    metadata = meta("good")

    def __init__(self) -> None:
        self.calls = 0

    async def execute(self, input: str) -> str:
        if not input:
            raise PluginExecutionError("empty input")
        self.calls += 1
        return input.upper()

    def stats(self) -> dict[str, Any]:
        return {"calls": self.calls, "ratio": 0.5, "tags": ("a", "b")}


class Needs(AgentPlugin):
    """Takes a required argument: the kernel cannot build it from an entry point."""

    metadata = meta("needs")

    def __init__(self, option: str) -> None:
        self.option = option

    async def execute(self, input: str) -> str:
        return input


class SaysYes(Good):
    metadata = meta("says-yes")

    async def health_check(self) -> bool:
        return "yes"  # type: ignore[return-value]


class Gloomy(Good):
    metadata = meta("gloomy")

    async def health_check(self) -> bool:
        return False


class OddStats(Good):
    metadata = meta("odd-stats")

    def stats(self) -> dict[str, Any]:
        return {"seen": {1, 2}}


class ListStats(Good):
    metadata = meta("list-stats")

    def stats(self) -> dict[str, Any]:
        return [1, 2]  # type: ignore[return-value]


class BrokenStats(Good):
    metadata = meta("broken-stats")

    def stats(self) -> dict[str, Any]:
        if self.state == PluginState.RUNNING:
            raise KeyError("calls")
        return {}


class WontStart(Good):
    metadata = meta("wont-start")

    def __init__(self) -> None:
        super().__init__()
        self.unloaded = False

    async def start(self) -> None:
        raise RuntimeError("no port")

    async def unload(self) -> None:
        self.unloaded = True


class Numeric(Good):
    metadata = meta("numeric")

    async def execute(self, input: str) -> str:
        return len(input)  # type: ignore[return-value]


class Remembers(AgentPlugin, HotReloadable):
    metadata = meta("remembers")

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.refreshed = 0

    async def execute(self, input: str) -> str:
        self.seen.append(input)
        return str(len(self.seen))

    async def save_state(self) -> object:
        return {"seen": self.seen, "count": len(self.seen)}

    async def restore_state(self, state: object) -> None:
        assert isinstance(state, dict)
        self.seen = list(state["seen"])

    async def refresh(self) -> None:
        self.refreshed += 1


class Forgets(Remembers):
    metadata = meta("forgets")

    async def restore_state(self, state: object) -> None:
        self.seen = []


class SavesObjects(Remembers):
    metadata = meta("saves-objects")

    async def save_state(self) -> object:
        return {"when": object()}


class CannotSave(Remembers):
    metadata = meta("cannot-save")

    async def save_state(self) -> object:
        raise OSError("disk full")


class FixedState(Good):
    """Overrides ``state`` with a read-only property: the kernel cannot tell it anything."""

    metadata = meta("fixed-state")

    @property  # type: ignore[override]
    def state(self) -> PluginState:
        return PluginState.RUNNING


class Upstream(Good):
    metadata = meta("upstream")


class Downstream(Good):
    metadata = meta("downstream", "upstream")

    async def start(self) -> None:
        assert self.context is not None
        if await self.context.get_state("upstream.ready") is None:
            raise RuntimeError("upstream is not running")


class PublishingUpstream(Upstream):
    async def start(self) -> None:
        assert self.context is not None
        await self.context.set_state("upstream.ready", True)


def hook_module() -> types.ModuleType:
    module = types.ModuleType("hooks_for_test")

    @hookimpl
    def plugin_metadata() -> PluginMetadata:
        return meta("hooked")

    @hookimpl
    async def execute(input: str) -> str:
        return input[::-1]

    module.plugin_metadata = plugin_metadata  # type: ignore[attr-defined]
    module.execute = execute  # type: ignore[attr-defined]
    return module


# -- registration and import weight ------------------------------------------------------------


def test_registered_in_the_pytest11_group() -> None:
    (entry,) = entry_points(group="pytest11", name="mofa_kernel")
    assert entry.value == "mofa_kernel.testing"


def test_import_mofa_kernel_leaves_the_testing_module_alone() -> None:
    code = (
        "import sys, mofa_kernel\n"
        "print(sorted(m for m in ('mofa_kernel.testing', 'pytest') if m in sys.modules))\n"
        "import mofa_kernel.testing\n"
        "print(sorted(m for m in ('mofa_kernel._manager', 'mofa_kernel._config', 'cattrs')"
        " if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.splitlines() == ["[]", "[]"]


# -- the conformance check ---------------------------------------------------------------------


async def test_a_good_plugin_conforms() -> None:
    report = await check_plugin(Good(), inputs=["hi", "", "there"])
    assert report.ok, report
    assert report.plugin_id == "good"
    assert set(report.checks) >= ALL_CHECKS | {"execute"}
    assert report.outputs == ("HI", None, "THERE")
    assert str(report).startswith("plugin 'good' conforms (")


async def test_a_class_is_instantiated_and_a_module_of_hooks_is_checked_too() -> None:
    assert (await check_plugin(Good)).ok
    report = await check_plugin(hook_module(), inputs=["abc"])
    assert report.ok, report
    assert report.outputs == ("cba",)


async def test_a_constructor_with_required_arguments_is_reported() -> None:
    report = await check_plugin(Needs)
    assert report.problems == (
        "Needs() raised TypeError: Needs.__init__() missing 1 required positional argument: "
        "'option'; __init__ must take no arguments",
    )


@pytest.mark.parametrize(
    ("plugin", "problem"),
    [
        (SaysYes(), "health_check in state Loaded returned 'yes' (str), expected True or False"),
        (Gloomy(), "health_check in state Running returned False; a running plugin must be"),
        (OddStats(), "stats in state Unloaded is not JSON data: $.seen: set is not JSON data"),
        (ListStats(), "stats in state Unloaded returned list, expected a dict"),
        (BrokenStats(), "stats in state Running raised KeyError: 'calls'"),
        (FixedState(), "after load the plugin's own state is Running, expected Loaded"),
    ],
    ids=lambda value: getattr(value, "plugin_id", "problem"),
)
async def test_each_fault_is_reported_and_the_check_goes_on(
    plugin: AgentPlugin, problem: str
) -> None:
    report = await check_plugin(plugin)
    assert not report.ok
    assert any(line.startswith(problem) for line in report.problems), report.problems
    assert "transitions" in report.checks  # the lifecycle was driven to its end
    assert all("\n" not in line for line in report.problems)


async def test_a_failing_step_stops_the_check_and_everything_is_shut_down() -> None:
    plugin = WontStart()
    report = await check_plugin(plugin)
    (problem,) = report.problems
    assert problem.startswith("start in state Loaded: ")
    assert "RuntimeError: no port" in problem
    assert plugin.unloaded  # the kernel cleaned up after the failure


async def test_execute_must_answer_a_string() -> None:
    report = await check_plugin(Numeric(), inputs=["four"])
    (problem,) = report.problems
    assert problem.startswith("execute('four'): ")
    assert "returned int, expected str" in problem


async def test_state_round_trips_through_json_into_a_fresh_instance() -> None:
    report = await check_plugin(Remembers(), inputs=["a", "b"])
    assert report.ok, report
    assert {"state round trip", "refresh"} <= set(report.checks)


@pytest.mark.parametrize(
    ("plugin", "problem"),
    [
        (Forgets(), "state does not round-trip: save_state gave "),
        (SavesObjects(), "save_state() is not JSON data: $.when: object is not JSON data"),
        (CannotSave(), "save_state raised OSError: disk full"),
    ],
    ids=lambda value: getattr(value, "plugin_id", "problem"),
)
async def test_state_that_does_not_round_trip_is_reported(
    plugin: AgentPlugin, problem: str
) -> None:
    report = await check_plugin(plugin, inputs=["a"])
    assert any(line.startswith(problem) for line in report.problems), report.problems


async def test_a_fresh_instance_can_be_given() -> None:
    made: list[Remembers] = []

    def fresh() -> Remembers:
        made.append(Remembers())
        return made[-1]

    report = await check_plugin(Remembers(), inputs=["x"], fresh=fresh)
    assert report.ok, report
    assert made[0].seen == ["x"]


async def test_dependencies_come_as_companions() -> None:
    report = await check_plugin(Downstream())
    (problem,) = report.problems
    assert problem.startswith("dependencies: missing dependency 'upstream'")
    assert problem.endswith("pass the plugins it depends on as companions=")
    report = await check_plugin(Downstream(), companions=[(PublishingUpstream, {"x": 1})])
    assert report.ok, report


async def test_assert_conforms_lists_every_problem() -> None:
    assert (await assert_conforms(Good(), inputs=["a"])).ok
    with pytest.raises(AssertionError) as caught:
        await assert_conforms(OddStats())
    lines = str(caught.value).splitlines()
    assert lines[0].startswith("plugin 'odd-stats' does not conform (")
    assert len(lines) == 1 + len((await check_plugin(OddStats())).problems)
    assert all(line.startswith("  stats in state ") for line in lines[1:])


def test_report_reads_as_one_line_per_problem() -> None:
    report = ConformanceReport("x", ("first", "second"), ("metadata",))
    assert str(report) == "plugin 'x' does not conform (2 problems):\n  first\n  second"


async def test_settings_and_config_are_exclusive() -> None:
    from mofa_kernel import PluginConfig

    with pytest.raises(TypeError, match="not both"):
        await check_plugin(Good(), settings={"a": 1}, config=PluginConfig())


# -- run_lifecycle -----------------------------------------------------------------------------


async def test_run_lifecycle_reports_what_happened() -> None:
    run = await run_lifecycle(Good, inputs=["a", "bc"])
    assert run.plugin_id == "good"
    assert run.outputs == ("A", "BC")
    assert run.healthy is True
    assert run.stats == {"calls": 2, "ratio": 0.5, "tags": ("a", "b")}
    s = PluginState
    assert run.transitions == (
        (s.UNLOADED, s.LOADING),
        (s.LOADING, s.LOADED),
        (s.LOADED, s.RUNNING),
        (s.RUNNING, s.PAUSED),
        (s.PAUSED, s.RUNNING),
        (s.RUNNING, s.LOADED),
        (s.LOADED, s.UNLOADED),
    )
    assert len(run.events) > len(run.transitions)


async def test_run_lifecycle_raises_the_kernels_error_after_shutting_down() -> None:
    plugin = WontStart()
    with pytest.raises(PluginError, match="no port"):
        await run_lifecycle(plugin)
    assert plugin.unloaded


async def test_run_lifecycle_starts_companions_first() -> None:
    run = await run_lifecycle(Downstream(), companions=[PublishingUpstream()], inputs=["x"])
    assert run.outputs == ("X",)


# -- every sample plugin conforms --------------------------------------------------------------


@pytest.fixture(scope="module")
def samples_importable() -> Iterator[None]:
    """The sample packages, from their source folders when they are not installed."""
    with pytest.MonkeyPatch.context() as patch:
        for source in sorted(SAMPLES.glob("*/src")):
            packages = [p.name for p in source.iterdir() if (p / "__init__.py").is_file()]
            if any(importlib.util.find_spec(name) is None for name in packages):
                patch.syspath_prepend(str(source))
        yield


def _calculator() -> Any:
    from mofa_sample_calculator import CalculatorPlugin

    return CalculatorPlugin()


def _memory(path: Path) -> Any:
    from mofa_sample_memory import MemoryPlugin

    return (MemoryPlugin(), {"path": str(path)})


def _sample_checks(tmp_path: Path) -> dict[str, Callable[[], Any]]:
    """Sample folder -> a coroutine making the report of check_plugin on that sample."""

    def calculator() -> Any:
        return check_plugin(_calculator(), inputs=["2 * (3 + 4)", "1 / 0"])

    def memory() -> Any:
        plugin, settings = _memory(tmp_path / "memory.sqlite3")
        request = json.dumps({"op": "set", "key": "k", "value": [1, 2]})
        return check_plugin(plugin, settings=settings, inputs=[request, "not json"])

    def monitor() -> Any:
        import mofa_sample_monitor

        mofa_sample_monitor.reset()
        return check_plugin(mofa_sample_monitor, inputs=[""])

    def llm() -> Any:
        from mofa_sample_llm import LLMPlugin

        # No input: execute would need an endpoint (the sample's own tests run a fake one).
        return check_plugin(LLMPlugin(), settings={"base_url": "http://127.0.0.1:9/v1"})

    def skill() -> Any:
        from mofa_sample_math_skill import MathSkillPlugin

        return check_plugin(
            MathSkillPlugin(),
            companions=[_calculator(), _memory(tmp_path / "skill.sqlite3")],
            inputs=["remember x = 6 * 7", "what is x + 1?", "recall y"],
        )

    def hello() -> Any:
        from mofa_sample_hello import HelloPlugin

        return check_plugin(HelloPlugin, inputs=["kernel"])

    return {
        "calculator": calculator,
        "memory": memory,
        "monitor": monitor,
        "llm": llm,
        "skill": skill,
        "hello": hello,
    }


def test_every_sample_has_a_conformance_check(tmp_path: Path) -> None:
    folders = {path.parent.name for path in SAMPLES.glob("*/pyproject.toml")}
    assert folders == set(_sample_checks(tmp_path))


@pytest.mark.parametrize("sample", sorted(_sample_checks(Path())))
async def test_sample_conforms(
    sample: str, samples_importable: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # anything a sample writes by default lands here
    report = await _sample_checks(tmp_path)[sample]()
    assert report.ok, str(report)
    assert set(report.checks) >= ALL_CHECKS


# -- the sandbox of fake entry points, directly --------------------------------------------------


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[EntryPointSandbox]:
    box = EntryPointSandbox(tmp_path / "site", monkeypatch)
    yield box
    box.close()


def _local_class() -> type:
    class Local(Good):
        pass

    return Local


@pytest.mark.parametrize(
    ("plugin_id", "target", "message"),
    [
        ("bad id", "mod:Cls", "plugin id 'bad id'"),
        ("x=y", "mod:Cls", "plugin id 'x=y'"),
        ("ok", "mod:Cls extra", "entry point value 'mod:Cls extra'"),
        ("ok", _local_class(), "defined inside a function"),
        ("ok", 42, "cannot name 42 in an entry point"),
    ],
)
def test_sandbox_refuses_what_entry_points_cannot_say(
    sandbox: EntryPointSandbox, plugin_id: str, target: object, message: str
) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        sandbox.add(plugin_id, target)
    assert not list(sandbox.root.iterdir())


def test_sandbox_keeps_files_inside_itself(sandbox: EntryPointSandbox, tmp_path: Path) -> None:
    for path in ("../escape.py", str(tmp_path / "abs.py")):
        with pytest.raises(ValueError, match="not a path inside the sandbox"):
            sandbox.add("ok", "ok_module:Plugin", files={path: "x = 1\n"})
    assert not (tmp_path / "escape.py").exists()
    assert not (tmp_path / "abs.py").exists()


def test_sandbox_refuses_a_distribution_twice(sandbox: EntryPointSandbox) -> None:
    sandbox.add("one", Good, distribution="twice")
    with pytest.raises(ValueError, match="already added"):
        sandbox.add("two", Good, distribution="twice")


async def test_sandbox_plugins_are_discovered_and_forgotten(
    sandbox: EntryPointSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mofa_kernel import PluginManager

    monkeypatch.setenv("MOFA_DISABLE_PLUGIN_AUTOLOAD", "1")
    code = "from mofa_kernel import PluginMetadata, PluginType, hookimpl\n\n" + textwrap.dedent(
        """
        @hookimpl
        def plugin_metadata():
            return PluginMetadata("boxed", "Boxed", PluginType.TOOL)

        @hookimpl
        def execute(input):
            return "boxed:" + input
        """
    )
    sandbox.add("boxed", "sandboxed_module", files={"sandboxed_module.py": code})
    assert "MOFA_DISABLE_PLUGIN_AUTOLOAD" not in os.environ
    assert os.environ["MOFA_PLUGINS"] == "boxed"
    async with PluginManager() as manager:
        assert manager.discover().registered == ["boxed"]
        await manager.start_all()
        assert await manager.execute("boxed", "x") == "boxed:x"
    assert "sandboxed_module" in sys.modules
    sandbox.close()
    assert "sandboxed_module" not in sys.modules


# -- the fixtures, as authors meet them (pytester) ----------------------------------------------


@pytest.fixture
def author(pytester: pytest.Pytester) -> pytest.Pytester:
    """A test project of a plugin author: pytest-asyncio in auto mode, warnings are errors."""
    pytester.makeini(INI.format(mode="auto"))
    return pytester


PLUGIN_MODULE = """
from mofa_kernel import AgentPlugin, PluginMetadata, PluginType

class Echo(AgentPlugin):
    metadata = PluginMetadata("echo", "Echo", PluginType.TOOL)

    def __init__(self):
        self.prefix = "echo"

    async def init_plugin(self):
        self.prefix = self.context.config.get_string("prefix") or self.prefix

    async def execute(self, input):
        return f"{self.prefix}:{input}"
"""


def test_every_fixture_is_listed_with_its_purpose(author: pytest.Pytester) -> None:
    result = author.runpytest("--fixtures")
    for name in FIXTURES:
        result.stdout.fnmatch_lines([f"{name}*"])
    result.stdout.fnmatch_lines(["*isolated*PluginManager*"])


def test_the_manager_is_isolated_from_the_environment(
    author: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MOFA_PLUGINS", "calculator")
    monkeypatch.setenv("MOFA_CONFIG", str(tmp_path / "missing.toml"))
    monkeypatch.delenv("MOFA_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    author.makepyfile(
        """
        import os

        async def test_autoload_is_off(mofa_manager):
            assert "MOFA_PLUGINS" not in os.environ
            assert "MOFA_CONFIG" not in os.environ
            assert os.environ["MOFA_DISABLE_PLUGIN_AUTOLOAD"] == "1"
            report = mofa_manager.discover()
            assert report.registered == []
            assert {r.status for r in report.records} <= {"disabled", "failed"}
            assert mofa_manager.plugin_ids() == []
        """
    )
    author.runpytest().assert_outcomes(passed=1)
    assert os.environ["MOFA_PLUGINS"] == "calculator"
    assert "MOFA_DISABLE_PLUGIN_AUTOLOAD" not in os.environ


def test_fake_entry_points_leave_nothing_behind(author: pytest.Pytester) -> None:
    author.makepyfile(
        f"""
        import importlib.util
        import os
        import sys
        from importlib.metadata import entry_points

        PLUGIN = {PLUGIN_MODULE!r}

        async def run(mofa_entry_points, mofa_manager, version):
            code = PLUGIN.replace('"echo", "Echo"', '"leaky", "Leaky"')
            code = code.replace('f"{{self.prefix}}:', f'"{{version}}:" + f"')
            mofa_entry_points.add("leaky", "leaky_plugin:Echo", files={{"leaky_plugin.py": code}})
            assert mofa_manager.discover().registered == ["leaky"]
            await mofa_manager.start_all()
            assert "leaky_plugin" in sys.modules
            return await mofa_manager.execute("leaky", "x")

        async def test_first(mofa_entry_points, mofa_manager):
            assert await run(mofa_entry_points, mofa_manager, "v1") == "v1:x"

        def test_nothing_leaked():
            assert "leaky_plugin" not in sys.modules
            assert importlib.util.find_spec("leaky_plugin") is None
            assert not entry_points(group="mofa.plugins", name="leaky")
            assert "MOFA_PLUGINS" not in os.environ
            assert not [p for p in sys.path if "mofa-site" in p]

        async def test_second_gets_its_own_code(mofa_entry_points, mofa_manager):
            assert await run(mofa_entry_points, mofa_manager, "v2") == "v2:x"
        """
    )
    author.runpytest().assert_outcomes(passed=3)
    assert "leaky_plugin" not in sys.modules


def test_an_entry_point_can_name_what_the_test_module_defines(author: pytest.Pytester) -> None:
    author.makepyfile(
        PLUGIN_MODULE
        + """

async def test_discovered(mofa_entry_points, mofa_manager):
    mofa_entry_points.add("echo", Echo, distribution="echo-dist", version="2.0")
    (record,) = [r for r in mofa_manager.discover().records if r.plugin_id == "echo"]
    assert record.status == "registered"
    assert record.source.entry_point == f"{__name__}:Echo"
    assert (record.source.distribution, record.source.distribution_version) == ("echo-dist", "2.0")
    await mofa_manager.start_all()
    assert await mofa_manager.execute("echo", "hi") == "echo:hi"
"""
    )
    author.runpytest().assert_outcomes(passed=1)


def test_use_installed_lets_a_real_distribution_load(author: pytest.Pytester) -> None:
    site = author.mkdir("site")
    (site / "installed_echo.py").write_text(
        PLUGIN_MODULE.replace('"echo", "Echo"', '"inst", "Inst"'), encoding="utf-8"
    )
    dist_info = site / "installed_echo-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Name: installed-echo\nVersion: 1.0\n", encoding="utf-8")
    (dist_info / "entry_points.txt").write_text(
        "[mofa.plugins]\ninst = installed_echo:Echo\n", encoding="utf-8"
    )
    author.syspathinsert(site)
    author.makepyfile(
        """
        def test_not_without_asking(mofa_manager):
            (record,) = [r for r in mofa_manager.discover().records if r.plugin_id == "inst"]
            assert record.status == "disabled"

        async def test_when_asked(mofa_entry_points, mofa_manager):
            mofa_entry_points.use_installed("inst")
            assert mofa_manager.discover().registered == ["inst"]
            await mofa_manager.start_all()
            assert await mofa_manager.execute("inst", "x") == "echo:x"
        """
    )
    author.runpytest().assert_outcomes(passed=2)


def test_register_and_lifecycle_fixtures(author: pytest.Pytester) -> None:
    author.makepyfile(
        PLUGIN_MODULE
        + """

from mofa_kernel import PluginState


async def test_register(mofa_register, mofa_manager):
    assert mofa_register(Echo, settings={"prefix": "hey"}) == "echo"
    await mofa_manager.start_all()
    assert await mofa_manager.execute("echo", "you") == "hey:you"


async def test_lifecycle(mofa_lifecycle):
    run = await mofa_lifecycle(Echo(), inputs=["a", "b"], settings={"prefix": "p"})
    assert run.outputs == ("p:a", "p:b")
    assert run.transitions[-1] == (PluginState.LOADED, PluginState.UNLOADED)
"""
    )
    author.runpytest().assert_outcomes(passed=2)


def test_strict_mode_works_too(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI.format(mode="strict"))
    pytester.makepyfile(
        PLUGIN_MODULE
        + """

import pytest


@pytest.mark.asyncio
async def test_strict(mofa_manager):
    mofa_manager.register(Echo())
    await mofa_manager.start_all()
    assert await mofa_manager.execute("echo", "s") == "echo:s"
"""
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_without_pytest_asyncio_the_async_fixture_says_so(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_plain=PLUGIN_MODULE
        + """

import asyncio


def test_async_fixture(mofa_manager):
    raise AssertionError("never reached")


def test_factory(mofa_manager_factory):
    async def scenario():
        async with mofa_manager_factory() as manager:
            manager.register(Echo())
            await manager.start_all()
            return await manager.execute("echo", "f")

    assert asyncio.run(scenario()) == "echo:f"
""",
        runner="""
import sys

sys.path.insert(0, "uninstalled")
import pytest

raise SystemExit(pytest.main(["-p", "no:asyncio", "-p", "no:cacheprovider", "test_plain.py"]))
""",
    )
    # A stand-in that fails to import, as pytest-asyncio would if it were not installed.
    blocked = pytester.mkdir("uninstalled") / "pytest_asyncio.py"
    blocked.write_text("raise ModuleNotFoundError('No module named pytest_asyncio')\n")
    result = pytester.run(sys.executable, "runner.py", timeout=120)
    result.stdout.fnmatch_lines(["*mofa_manager fixture is async and needs pytest-asyncio*"])
    result.assert_outcomes(passed=1, errors=1)
    assert "Traceback" not in result.stdout.str()


def test_the_testing_page_example_passes(author: pytest.Pytester) -> None:
    """docs/testing.md shows docs/kit/test_text_tools.py: it runs here on the docs' plugins."""
    for name in ("word_count.py", "shout.py"):
        source = DOCS / "examples" / "text-plugins" / name
        author.makepyfile(**{name.removesuffix(".py"): source.read_text()})
    author.makepyfile(test_text_tools=(DOCS / "kit" / "test_text_tools.py").read_text())
    author.syspathinsert()
    result = author.runpytest()
    result.assert_outcomes(passed=len(_test_names(DOCS / "kit" / "test_text_tools.py")))


def _test_names(path: Path) -> list[str]:
    return [
        line.split("(")[0].split()[-1]
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.startswith(("def test_", "async def test_"))
    ]


def test_the_testing_page_report_example(tmp_path: Path) -> None:
    """docs/testing.md shows docs/kit/gloomy.py and, from gloomy.out, what it prints."""
    program = DOCS / "kit" / "gloomy.py"
    result = subprocess.run(
        [sys.executable, str(program)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    expected = program.with_suffix(".out")
    if os.environ.get("MOFA_UPDATE_DOC_EXAMPLES") == "1":
        expected.write_text(result.stdout, encoding="utf-8")
    assert result.stdout == expected.read_text(encoding="utf-8")


def test_every_kit_file_is_shown_in_the_docs() -> None:
    kit = DOCS / "kit"
    files = {p.relative_to(DOCS).as_posix() for p in kit.rglob("*") if p.is_file()}
    files = {f for f in files if "__pycache__" not in f}
    shown = set()
    for page in DOCS.glob("*.md"):
        for line in page.read_text(encoding="utf-8").splitlines():
            if line.startswith("```{literalinclude} kit/"):
                shown.add(line.split()[1])
    assert files == shown


# -- the kinds of methods, and the check without pytest ------------------------------------------


class SyncExecute(AgentPlugin):
    metadata = PluginMetadata("sync-execute", "Sync", PluginType.TOOL)

    def execute(self, input: str) -> str:  # type: ignore[override]
        return input


class AsyncStats(AgentPlugin):
    metadata = PluginMetadata("async-stats", "Async stats", PluginType.TOOL)

    async def execute(self, input: str) -> str:
        return input

    async def stats(self) -> dict[str, int]:  # type: ignore[override]
        return {}


async def test_a_plain_execute_does_not_conform() -> None:
    report = await check_plugin(SyncExecute, inputs=["x"])
    assert "execute is not async: declare it with 'async def'" in report.problems
    assert "async methods" in report.checks


def test_an_async_stats_does_not_conform() -> None:
    # Checked on the class alone: driving it would leave the unawaited coroutine behind.
    from mofa_kernel._conformance import _kind_problems

    assert _kind_problems(AsyncStats()) == ["stats is async: declare it with a plain 'def'"]


def test_check_plugin_works_without_pytest(tmp_path: Path) -> None:
    """In an interpreter where pytest cannot be imported, the conformance check still runs."""
    program = tmp_path / "check.py"
    program.write_text(
        "import asyncio, sys\n"
        "sys.modules['pytest'] = None  # as if pytest were not installed at all\n"
        "from mofa_kernel.testing import check_plugin, EntryPointSandbox\n"
        "from mofa_kernel import AgentPlugin, PluginMetadata, PluginType\n"
        "class Echo(AgentPlugin):\n"
        "    metadata = PluginMetadata('echo', 'Echo', PluginType.TOOL)\n"
        "    async def execute(self, input):\n"
        "        return input\n"
        "report = asyncio.run(check_plugin(Echo, inputs=['hi']))\n"
        "print(report.ok, report.outputs, 'pytest' in sys.modules and sys.modules['pytest'])\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, str(program)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "True ('hi',) None\n"
