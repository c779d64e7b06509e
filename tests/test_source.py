"""Plugin sources: one reading of an entry point's value, shared by every module that needs it."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterator
from pathlib import Path

import pytest

from _fakesite import FakeSite, fake_site
from mofa_kernel._cache import MetadataNotes, lookup_metadata, plugin_token
from mofa_kernel._discovery import load_plugin_object, scan_with_problems
from mofa_kernel._metadata import PluginMetadata
from mofa_kernel._reload._code import entry_point_root
from mofa_kernel._source import PluginSource, entry_point_target
from mofa_kernel._wire import to_data

HOOK_MODULE = """\
from mofa_kernel import PluginMetadata, PluginType, hookimpl

@hookimpl
def plugin_metadata():
    return PluginMetadata("extra", "extra", PluginType.TOOL)
"""


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSite]:
    yield from fake_site(tmp_path, monkeypatch)


@pytest.mark.parametrize(
    ("value", "module", "attr"),
    [
        ("pkg.mod", "pkg.mod", None),
        ("pkg.mod:obj", "pkg.mod", "obj"),
        ("pkg.mod [extra]", "pkg.mod", None),
        ("pkg.mod:obj.factory [extra, other]", "pkg.mod", "obj.factory"),
        ("pkg.mod : obj ", "pkg.mod", "obj"),
    ],
)
def test_the_value_is_read_as_importlib_metadata_reads_it(
    value: str, module: str, attr: str | None
) -> None:
    assert entry_point_target(value) == (module, attr)
    entry_point = importlib.metadata.EntryPoint(name="x", value=value, group="g")
    assert (entry_point.module, entry_point.attr) == (module, attr)
    source = PluginSource("x", value)
    assert (source.module, source.attr) == (module, attr)


def test_a_value_that_is_no_entry_point_names_no_real_module() -> None:
    assert entry_point_target("not an entry point!") == ("not an entry point!", None)


def test_an_entry_point_with_extras_names_the_same_module_for_every_reader(
    site: FakeSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOFA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("MOFA_NO_CACHE", raising=False)
    value = "mkt_extra.hooks [fast]"
    site.add(
        "mkt-extra",
        plugins={"extra": value},
        files={"mkt_extra/__init__.py": "", "mkt_extra/hooks.py": HOOK_MODULE},
    )
    (source,) = [s for s in scan_with_problems().sources if s.plugin_id == "extra"]
    assert source.entry_point == value
    assert (source.module, source.attr) == ("mkt_extra.hooks", None)
    # Discovery found the module's own file in the distribution's RECORD.
    assert source.path == site.root / "mkt_extra" / "hooks.py"
    # The metadata cache hashes that file, extras or not.
    assert source.metadata_dir is not None
    where = {"path": str(source.path), "metadata_dir": str(source.metadata_dir)}
    token = plugin_token(entry_point=value, **where)
    assert token is not None
    assert token == plugin_token(entry_point="mkt_extra.hooks", **where)
    # Hot reload watches the package the module belongs to.
    assert entry_point_root(source.module) == "mkt_extra"
    # The metadata learned at load time is found again by `plugins list`.
    notes = MetadataNotes.before([source])
    plugin = load_plugin_object(source)
    metadata = plugin.plugin_metadata()  # type: ignore[attr-defined]
    assert isinstance(metadata, PluginMetadata)
    notes.learned(source, metadata)
    notes.save()
    row = {
        "id": source.plugin_id,
        "distribution": source.distribution,
        "distribution_version": source.distribution_version,
        "entry_point": value,
        **where,
    }
    assert lookup_metadata([row]) == [to_data(metadata)]
