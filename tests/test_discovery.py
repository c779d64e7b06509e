"""Entry-point discovery: scanning without importing, verdicts, and loading plugin objects."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from _fakesite import FakeSite, fake_site
from mofa_kernel import AgentPlugin, PluginLoadError
from mofa_kernel._discovery import (
    find_duplicates,
    load_plugin_object,
    scan,
    scan_with_problems,
    survey,
)
from mofa_kernel._distributions import installed_kernel_version, kernel_requirement_error
from mofa_kernel._source import PLUGIN_GROUP, PluginSource, normalize_name

CLASS_PLUGIN = """\
from mofa_kernel import AgentPlugin, PluginMetadata, PluginType

class Plugin(AgentPlugin):
    metadata = PluginMetadata("{id}", "{id}", PluginType.TOOL)

    async def execute(self, input):
        return input

def make():
    return Plugin()

def make_nothing():
    return 42

async def make_async():
    return Plugin()

def make_broken():
    raise ValueError("factory broke")

instance = Plugin()
not_a_plugin = object()
"""

HOOK_MODULE = """\
from mofa_kernel import PluginMetadata, PluginType, hookimpl

@hookimpl
def plugin_metadata():
    return PluginMetadata("{id}", "{id}", PluginType.TOOL)

@hookimpl
def execute(input):
    return input.upper()

class HookClass:
    @hookimpl
    def execute(self, input):
        return input

class Plain:
    pass

hooks_object = HookClass()
"""


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSite]:
    yield from fake_site(tmp_path, monkeypatch)


def ours(sources: list[PluginSource]) -> list[PluginSource]:
    """The sources from test distributions (named mkt-*), not whatever the environment has."""
    return [s for s in sources if (s.distribution or "").startswith("mkt-")]


def test_normalize_name_follows_pep_503() -> None:
    assert normalize_name("Mofa_Sample.Hello") == "mofa-sample-hello"
    assert normalize_name("a--b__c") == "a-b-c"


def test_scan_reads_entry_points_without_importing(site: FakeSite) -> None:
    site.add(
        "mkt-alpha",
        "1.2.3",
        plugins={"alpha": "mkt_alpha:Plugin"},
        files={"mkt_alpha/__init__.py": "raise RuntimeError('imported during scan')\n"},
        requires=["mofa-kernel>=0.1", "attrs"],
    )
    site.add(
        "mkt-other-group",
        entry_points_text="[console_scripts]\nx = mkt_x:main\n",
    )
    found = ours(scan())
    assert found == [
        PluginSource(
            plugin_id="alpha",
            entry_point="mkt_alpha:Plugin",
            distribution="mkt-alpha",
            distribution_version="1.2.3",
            path=site.root / "mkt_alpha" / "__init__.py",
            requires_kernel=">=0.1",
        )
    ]
    assert "mkt_alpha" not in sys.modules
    assert found[0].module == "mkt_alpha"
    assert found[0].attr == "Plugin"
    assert found[0].describe() == "mkt-alpha 1.2.3 (mkt_alpha:Plugin)"


def test_module_entry_point_has_no_attr() -> None:
    source = PluginSource("m", "pkg.sub [extra]")
    assert source.module == "pkg.sub"
    assert source.attr is None
    assert PluginSource("m", "pkg.sub:obj.factory [extra]").attr == "obj.factory"


def test_scan_takes_the_first_of_two_same_named_distributions(
    site: FakeSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site.add("mkt-twice", "2.0", plugins={"first": "mkt_first:Plugin"})
    shadowed = FakeSite(tmp_path / "later", monkeypatch)
    shadowed.add("mkt-twice", "1.0", plugins={"second": "mkt_second:Plugin"})
    # "later" was prepended last, so it comes first on sys.path: its copy wins.
    found = ours(scan())
    assert [(s.plugin_id, s.distribution_version) for s in found] == [("second", "1.0")]


def test_an_unreadable_distribution_is_reported_and_the_rest_found(site: FakeSite) -> None:
    site.add("mkt-bad", entry_points_text="[mofa.plugins]\nthis line has no equals sign\n")
    site.add("mkt-good", plugins={"good": "mkt_good:Plugin"})
    site.add("mkt-nameless", plugins={"orphan": "mkt_orphan:Plugin"}, metadata_name=False)
    result = scan_with_problems()
    assert [s.plugin_id for s in ours(list(result.sources))] == ["good"]
    assert "orphan" not in [s.plugin_id for s in result.sources]
    bad = [p for p in result.problems if p.startswith("mkt-bad:")]
    assert len(bad) == 1
    assert "unreadable entry points" in bad[0]
    assert any("has no Name" in p and str(site.root) in p for p in result.problems)


def test_scan_logs_problems(site: FakeSite, caplog: pytest.LogCaptureFixture) -> None:
    site.add("mkt-bad", entry_points_text="[mofa.plugins]\nno equals\n")
    scan()
    assert any(r.getMessage().startswith("mkt-bad:") for r in caplog.records)


@pytest.mark.parametrize(
    ("requirement", "expected"),
    [
        ("mofa-kernel>=0.1,<2", "<2,>=0.1"),
        ("Mofa_Kernel (>=99)", ">=99"),
        ("mofa-kernel", ""),
        ('mofa-kernel>=99; extra == "dev"', None),
        ('mofa-kernel>=99; python_version < "3"', None),
        ("mofa-kernel-extras>=99", None),
        ("mofa-kernel >>= 1", ">>= 1"),
    ],
)
def test_requires_kernel(site: FakeSite, requirement: str, expected: str | None) -> None:
    site.add("mkt-req", plugins={"req": "mkt_req:Plugin"}, requires=[requirement])
    (source,) = ours(scan())
    assert source.requires_kernel == expected


def test_path_of_an_editable_install_is_its_project(site: FakeSite, tmp_path: Path) -> None:
    project = tmp_path / "my project"
    site.add("mkt-editable", plugins={"ed": "mkt_ed:Plugin"}, editable_project=project)
    (source,) = ours(scan())
    assert source.path == project


def test_path_falls_back_to_the_install_location(site: FakeSite) -> None:
    site.add("mkt-elsewhere", plugins={"el": "mkt_el:Plugin"})
    (source,) = ours(scan())
    assert source.path == site.root


def test_find_duplicates() -> None:
    a1 = PluginSource("a", "one:P", "dist-one")
    a2 = PluginSource("a", "two:P", "dist-two")
    b = PluginSource("b", "b:P", "dist-b")
    assert find_duplicates([a1, b, a2]) == {"a": [a1, a2]}
    assert find_duplicates([a1, b]) == {}


def test_kernel_requirement_error() -> None:
    source = PluginSource("future", "f:P", "mkt-future", "1.0", requires_kernel=">=99")
    message = kernel_requirement_error(source, "0.1.0")
    assert message == (
        "plugin 'future' from mkt-future requires mofa-kernel>=99, "
        "but mofa-kernel 0.1.0 is installed; refused"
    )
    assert kernel_requirement_error(source, "99.0") is None
    assert kernel_requirement_error(source, "99.1rc1") is None
    assert kernel_requirement_error(PluginSource("x", "x:P", "d"), "0.1.0") is None
    assert kernel_requirement_error(PluginSource("x", "x:P", requires_kernel=""), "0.1") is None
    unreadable = PluginSource("x", "x:P", "d", requires_kernel=">>= 1")
    assert "unreadable requirement on mofa-kernel ('>>= 1')" in str(
        kernel_requirement_error(unreadable, "0.1.0")
    )


def test_kernel_requirement_defaults_to_the_installed_version() -> None:
    installed = installed_kernel_version()
    assert installed is not None
    too_new = PluginSource("x", "x:P", "d", requires_kernel=f">{installed}")
    assert f"mofa-kernel {installed} is installed" in str(kernel_requirement_error(too_new))
    assert kernel_requirement_error(PluginSource("x", "x:P", "d", requires_kernel="<=999")) is None


def test_survey_gives_each_plugin_a_verdict() -> None:
    ok = PluginSource("ok", "ok:P", "d-ok")
    off = PluginSource("off", "off:P", "d-off")
    twin1 = PluginSource("twin", "t1:P", "d-t1", "1.0")
    twin2 = PluginSource("twin", "t2:P", "d-t2", "2.0")
    future = PluginSource("future", "f:P", "d-f", requires_kernel=">=99")
    result = survey(
        lambda s: "switched off" if s.plugin_id == "off" else None,
        sources=[ok, off, twin1, twin2, future],
        kernel_version="0.1.0",
    )
    verdicts = [(e.plugin_id, e.status, e.enabled) for e in result.entries]
    assert verdicts == [
        ("ok", "discovered", True),
        ("off", "disabled", False),
        ("twin", "failed", True),
        ("twin", "failed", True),
        ("future", "failed", True),
    ]
    assert result.entries[1].reason == "switched off"
    assert result.entries[2].reason == (
        "plugin id 'twin' is claimed by 2 entry points: d-t1 1.0 (t1:P), d-t2 2.0 (t2:P); "
        "none is loaded"
    )
    assert "requires mofa-kernel>=99" in str(result.entries[4].reason)
    assert result.loadable() == [ok]
    assert [e.source for e in result.find("twin")] == [twin1, twin2]


def test_an_excluded_claimant_is_no_conflict() -> None:
    twin1 = PluginSource("twin", "t1:P", "d-t1")
    twin2 = PluginSource("twin", "t2:P", "d-t2")
    result = survey(
        lambda s: "denied" if s.distribution == "d-t1" else None, sources=[twin1, twin2]
    )
    assert [e.status for e in result.entries] == ["disabled", "discovered"]


def test_survey_scans_by_default(site: FakeSite) -> None:
    site.add("mkt-bad", entry_points_text="[mofa.plugins]\nno equals\n")
    site.add("mkt-s", plugins={"s": "mkt_s:Plugin"})
    result = survey()
    assert [e.status for e in result.entries if e.plugin_id == "s"] == ["discovered"]
    assert any(p.startswith("mkt-bad:") for p in result.problems)


def _source(site: FakeSite, value: str, text: str, plugin_id: str = "p") -> PluginSource:
    module = value.partition(":")[0]
    site.add(f"mkt-{plugin_id}", plugins={plugin_id: value}, files={f"{module}.py": text})
    (source,) = [s for s in ours(scan()) if s.plugin_id == plugin_id]
    return source


@pytest.mark.parametrize("attr", ["Plugin", "make", "instance"])
def test_class_factory_and_instance_give_an_agent_plugin(site: FakeSite, attr: str) -> None:
    source = _source(site, f"mkt_cls_{attr}:{attr}", CLASS_PLUGIN.format(id="p"))
    plugin = load_plugin_object(source)
    assert isinstance(plugin, AgentPlugin)
    assert plugin.plugin_id == "p"


def test_a_module_of_hooks_is_the_plugin_itself(site: FakeSite) -> None:
    source = _source(site, "mkt_hooks", HOOK_MODULE.format(id="p"))
    plugin = load_plugin_object(source)
    assert plugin is sys.modules["mkt_hooks"]


def test_hook_objects_and_hook_classes(site: FakeSite) -> None:
    module = HOOK_MODULE.format(id="p")
    obj_source = _source(site, "mkt_hobj:hooks_object", module, plugin_id="obj")
    assert type(load_plugin_object(obj_source)).__name__ == "HookClass"
    cls_source = PluginSource("cls", "mkt_hobj:HookClass", "mkt-obj")
    made = load_plugin_object(cls_source)
    assert type(made).__name__ == "HookClass"
    assert not isinstance(made, type)


@pytest.mark.parametrize(
    ("attr", "message"),
    [
        ("not_a_plugin", "object object is not a plugin"),
        ("make_nothing", "the factory returned int, not an AgentPlugin"),
        ("make_async", "the factory is async"),
    ],
)
def test_things_that_are_not_plugins_are_refused(site: FakeSite, attr: str, message: str) -> None:
    source = _source(site, f"mkt_not_{attr}:{attr}", CLASS_PLUGIN.format(id="p"))
    with pytest.raises(PluginLoadError, match=message) as info:
        load_plugin_object(source)
    assert info.value.plugin_id == "p"
    assert info.value.distribution == "mkt-p"
    assert info.value.entry_point == f"mkt_not_{attr}:{attr}"


def test_a_module_without_hooks_and_a_plain_class_are_refused(site: FakeSite) -> None:
    source = _source(site, "mkt_plainmod", "x = 1\n")
    with pytest.raises(PluginLoadError, match="module mkt_plainmod carries no @hookimpl"):
        load_plugin_object(source)
    plain = _source(site, "mkt_plaincls:Plain", HOOK_MODULE.format(id="q"), plugin_id="q")
    with pytest.raises(PluginLoadError, match="Plain is a class that neither derives"):
        load_plugin_object(plain)


def test_an_import_failure_is_one_line_with_its_location(site: FakeSite) -> None:
    source = _source(
        site, "mkt_boom:Plugin", "import os\n\nraise RuntimeError('boom\\nsecond line')\n"
    )
    with pytest.raises(PluginLoadError) as info:
        load_plugin_object(source)
    message = str(info.value)
    assert message == (
        "cannot import plugin 'p' from mkt-p 1.0 (mkt_boom:Plugin): "
        "RuntimeError: boom; second line (mkt_boom.py:3)"
    )
    assert isinstance(info.value.__cause__, RuntimeError)
    assert "\n" not in message


def test_a_missing_dependency_names_the_module_and_the_import_line(site: FakeSite) -> None:
    source = _source(site, "mkt_needs:Plugin", "\nimport mkt_not_installed_anywhere\n")
    with pytest.raises(PluginLoadError) as info:
        load_plugin_object(source)
    assert str(info.value).endswith(
        "ModuleNotFoundError: No module named 'mkt_not_installed_anywhere' (mkt_needs.py:2)"
    )


def test_a_missing_plugin_module_has_no_location(site: FakeSite) -> None:
    site.add("mkt-ghost", plugins={"ghost": "mkt_ghost_module:Plugin"})
    (source,) = [s for s in ours(scan()) if s.plugin_id == "ghost"]
    with pytest.raises(PluginLoadError) as info:
        load_plugin_object(source)
    assert str(info.value).endswith("ModuleNotFoundError: No module named 'mkt_ghost_module'")


def test_a_syntax_error_names_file_and_line(site: FakeSite) -> None:
    source = _source(site, "mkt_syntax:Plugin", "x = 1\ndef broken(:\n")
    with pytest.raises(PluginLoadError) as info:
        load_plugin_object(source)
    assert "SyntaxError: " in str(info.value)
    assert str(info.value).endswith("(mkt_syntax.py:2)")


def test_a_missing_attribute_and_a_failing_factory(site: FakeSite) -> None:
    source = _source(site, "mkt_attr:Nope", CLASS_PLUGIN.format(id="p"))
    with pytest.raises(PluginLoadError, match=r"AttributeError: .*'Nope'"):
        load_plugin_object(source)
    factory = PluginSource("p", "mkt_attr:make_broken", "mkt-p", "1.0")
    with pytest.raises(PluginLoadError) as info:
        load_plugin_object(factory)
    assert str(info.value).startswith("cannot build plugin 'p'")
    assert str(info.value).endswith("ValueError: factory broke (mkt_attr.py:19)")


def test_sys_exit_at_import_is_a_load_error(site: FakeSite) -> None:
    source = _source(site, "mkt_exit:Plugin", "import sys\nsys.exit(3)\n")
    with pytest.raises(PluginLoadError, match=r"SystemExit: 3 \(mkt_exit.py:2\)"):
        load_plugin_object(source)


def test_the_group_is_mofa_plugins() -> None:
    assert PLUGIN_GROUP == "mofa.plugins"
